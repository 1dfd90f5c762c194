#!/usr/bin/env python3
"""Checks every relative link in the repository's Markdown files: the file
exists inside the repository, and an #anchor names a heading of it (as
GitHub makes heading anchors). Links in code are not links.

    scripts/check-links.py [FILE...]   # FILEs: allowed to be missing (not yet written)

Exits 1 if a link is broken."""
import os, re, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
expected_elsewhere = set(sys.argv[1:])
files = subprocess.run(["git", "-C", root, "ls-files", "*.md"], capture_output=True,
                       text=True, check=True).stdout.split()
# and new files in docs/ not yet added to git
for f in sorted(os.listdir(os.path.join(root, "docs"))):
    p = "docs/" + f
    if f.endswith(".md") and p not in files:
        files.append(p)

def strip_code(text):
    text = re.sub(r"^(```|~~~).*?^\1\s*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)

def slugs(path):
    out, seen = set(), {}
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"^(```|~~~).*?^\1\s*$", "", text, flags=re.S | re.M)
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        h = m.group(1)
        h = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", h)  # links -> text
        s = h.strip().lower()
        s = re.sub(r"[^\w\- ]", "", s)
        s = s.replace(" ", "-")
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', text):
        out.add(m.group(1))
    return out

bad = missing_elsewhere = checked = 0
for f in sorted(files):
    path = os.path.join(root, f)
    text = strip_code(open(path, encoding="utf-8").read())
    for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        checked += 1
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        rel = os.path.relpath(dest, root)
        if rel.startswith(".."):
            print(f"{f}: {target}: leaves the repository"); bad += 1; continue
        if not os.path.exists(dest):
            if rel in expected_elsewhere:
                missing_elsewhere += 1
                continue
            print(f"{f}: {target}: no such file"); bad += 1; continue
        if anchor and dest.endswith(".md") and anchor not in slugs(dest):
            print(f"{f}: {target}: no heading #{anchor} in {rel}"); bad += 1
print(f"{checked} relative links in {len(files)} files; {bad} broken; "
      f"{missing_elsewhere} to files allowed to be missing")
sys.exit(1 if bad else 0)

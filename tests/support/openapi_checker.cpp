#include "tests/support/openapi_checker.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>
#include <stdexcept>

namespace tocsin::test {

using nlohmann::json;

namespace {

/// Keywords that only annotate: no bearing on validity.
const std::set<std::string, std::less<>> annotations{
    "description", "example",  "examples",   "title",    "default",
    "summary",     "$comment", "deprecated", "readOnly", "writeOnly"};

const std::set<std::string, std::less<>> http_methods{
    "get", "put", "post", "delete", "options", "head", "patch", "trace"};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path == "/")
    return out;
  if (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      return out;
    path.remove_prefix(slash + 1);
  }
}

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s)
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view type_of(const json& j) {
  switch (j.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "boolean";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
  case json::value_t::number_float:
    return "number";
  case json::value_t::string:
    return "string";
  case json::value_t::array:
    return "array";
  case json::value_t::object:
    return "object";
  default:
    return "other";
  }
}

bool has_type(const json& j, std::string_view type) {
  if (type == "integer")
    return j.is_number_integer() ||
           (j.is_number_float() &&
            std::trunc(j.get<double>()) == j.get<double>());
  return type_of(j) == type;
}

/// Code points of valid UTF-8 (what JSON Schema's lengths count).
std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool is_date_time(const std::string& s) {
  static const std::regex rfc3339{
      R"(^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)"};
  return std::regex_match(s, rfc3339);
}

bool is_uri(const std::string& s) {
  static const std::regex uri{R"(^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$)"};
  return std::regex_match(s, uri);
}

std::string show(const json& j) {
  auto text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() > 80 ? text.substr(0, 77) + "..." : text;
}

} // namespace

openapi_checker::openapi_checker(json description)
    : doc_(std::move(description)) {
  if (!doc_.is_object() || !doc_.contains("paths") ||
      !doc_["paths"].is_object())
    throw std::invalid_argument("not an OpenAPI description: no paths");
}

const json& openapi_checker::schema(const std::string& name) const {
  return doc_.at("components").at("schemas").at(name);
}

const json& openapi_checker::resolve(const json& node) const {
  const json* at = &node;
  // {"$ref": ...} alone stands for what it names (a $ref beside other
  // keywords is a schema of its own: check_into reads both).
  for (int hops = 0; at->is_object() && at->size() == 1 && at->contains("$ref");
       ++hops) {
    if (hops > 32)
      throw std::invalid_argument("a $ref loop");
    auto ref = (*at)["$ref"].get<std::string>();
    if (ref.rfind("#/", 0) != 0)
      throw std::invalid_argument("only local $refs: " + ref);
    // A JSON Pointer: ~1 is '/', ~0 is '~' (json_pointer decodes them).
    at = &doc_.at(json::json_pointer{ref.substr(1)});
  }
  return *at;
}

std::optional<std::string>
openapi_checker::path_of(std::string_view path) const {
  auto segs = split_path(path);
  std::optional<std::string> best;
  int best_literals = -1;
  for (auto& [tpl, item] : doc_["paths"].items()) {
    auto parts = split_path(tpl);
    if (parts.size() != segs.size())
      continue;
    int literals = 0;
    bool fits = true;
    for (std::size_t i = 0; i < parts.size() && fits; ++i) {
      if (parts[i].size() > 2 && parts[i].front() == '{' &&
          parts[i].back() == '}')
        fits = !segs[i].empty();
      else if ((fits = parts[i] == segs[i]))
        ++literals;
    }
    if (fits && literals > best_literals) {
      best = tpl;
      best_literals = literals;
    }
  }
  return best;
}

std::vector<std::string> openapi_checker::operations() const {
  std::vector<std::string> out;
  for (auto& [tpl, item] : doc_["paths"].items())
    for (auto& [method, op] : item.items())
      if (http_methods.count(method)) {
        std::string m;
        for (char c : method)
          m += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out.push_back(m + " " + tpl);
      }
  return out;
}

void openapi_checker::record(std::string_view method,
                             std::string_view path_template, int status) {
  seen_[std::string{method} + " " + std::string{path_template}].insert(status);
}

std::vector<std::string>
openapi_checker::check_answer(std::string_view method, std::string_view target,
                              int status, std::string_view content_type,
                              std::string_view body) {
  std::vector<std::string> out;
  auto path = target.substr(0, target.find('?'));
  auto what = std::string{method} + " " + std::string{target} + " -> " +
              std::to_string(status) + ": ";
  auto tpl = path_of(path);
  if (!tpl)
    return {what + "no path of the description matches " + std::string{path}};
  auto& item = doc_["paths"][*tpl];
  auto m = lower(method == "HEAD" ? std::string_view{"GET"} : method);
  if (!item.contains(m))
    return {what + std::string{method} + " is not documented for " + *tpl};
  record(method == "HEAD" ? "GET" : method, *tpl, status);
  auto& responses = item[m].at("responses");
  auto code = std::to_string(status);
  auto range = code.substr(0, 1) + "XX";
  const json* documented = nullptr;
  for (auto& key : {code, range, std::string{"default"}})
    if (responses.contains(key)) {
      documented = &responses[key];
      break;
    }
  if (!documented)
    return {what + "status " + code + " is not documented for " +
            std::string{method} + " " + *tpl};
  auto& resp = resolve(*documented);
  if (!resp.contains("content")) {
    if (!body.empty())
      out.push_back(what + "a body where the description has none: " +
                    std::string{body.substr(0, 80)});
    return out;
  }
  if (method == "HEAD")
    return out; // no body to read
  auto mime = lower(content_type.substr(0, content_type.find(';')));
  while (!mime.empty() && mime.back() == ' ')
    mime.pop_back();
  auto& content = resp["content"];
  if (!content.contains(mime)) {
    out.push_back(what + "Content-Type " + std::string{content_type} +
                  " is not documented (" + content.dump() + ")");
    return out;
  }
  auto& media = content[mime];
  if (!media.contains("schema"))
    return out;
  json instance;
  if (mime == "application/json" || mime.ends_with("+json")) {
    instance = json::parse(body, nullptr, false);
    if (instance.is_discarded()) {
      out.push_back(what +
                    "the body is not JSON: " + std::string{body.substr(0, 80)});
      return out;
    }
  } else {
    instance = std::string{body};
  }
  for (auto& p : check(instance, media["schema"]))
    out.push_back(what + p);
  return out;
}

std::vector<std::string>
openapi_checker::check(const json& instance, const json& schema,
                       const std::string& where) const {
  std::vector<std::string> out;
  check_into(instance, schema, where, out, 0);
  return out;
}

void openapi_checker::check_into(const json& x, const json& schema_in,
                                 const std::string& where,
                                 std::vector<std::string>& out,
                                 int depth) const {
  if (depth > 64) {
    out.push_back(where + ": schemas nest too deep");
    return;
  }
  if (schema_in.is_boolean()) {
    if (!schema_in.get<bool>())
      out.push_back(where + ": not allowed here (schema false)");
    return;
  }
  if (!schema_in.is_object()) {
    out.push_back(where + ": a schema that is not an object");
    return;
  }
  auto fail = [&](const std::string& why) {
    out.push_back(where + ": " + why);
  };
  // A $ref applies the schema it names, beside whatever else is here.
  const json& schema = schema_in;
  if (auto ref = schema.find("$ref"); ref != schema.end())
    check_into(x, resolve(json{{"$ref", *ref}}), where, out, depth + 1);

  for (auto& [key, v] : schema.items()) {
    if (key == "$ref" || annotations.count(key))
      continue;
    if (key == "type") {
      std::vector<std::string> types;
      if (v.is_string())
        types.push_back(v.get<std::string>());
      else
        for (auto& t : v)
          types.push_back(t.get<std::string>());
      if (std::none_of(types.begin(), types.end(),
                       [&](const std::string& t) { return has_type(x, t); }))
        fail("a " + std::string{type_of(x)} + " where the type is " + v.dump() +
             ": " + show(x));
    } else if (key == "enum") {
      if (std::find(v.begin(), v.end(), x) == v.end())
        fail(show(x) + " is not one of " + v.dump());
    } else if (key == "const") {
      if (x != v)
        fail(show(x) + " is not " + v.dump());
    } else if (key == "properties") {
      if (!x.is_object())
        continue;
      for (auto& [name, sub] : v.items())
        if (auto it = x.find(name); it != x.end())
          check_into(*it, sub, where + "." + name, out, depth + 1);
    } else if (key == "required") {
      if (!x.is_object())
        continue;
      for (auto& name : v)
        if (!x.contains(name.get<std::string>()))
          fail("the required field '" + name.get<std::string>() +
               "' is missing");
    } else if (key == "additionalProperties") {
      if (!x.is_object())
        continue;
      auto known = schema.value("properties", json::object());
      for (auto& [name, sub] : x.items()) {
        if (known.contains(name))
          continue;
        if (v.is_boolean() && !v.get<bool>())
          fail("the field '" + name + "' is not documented");
        else
          check_into(sub, v, where + "." + name, out, depth + 1);
      }
    } else if (key == "items") {
      if (!x.is_array())
        continue;
      for (std::size_t i = 0; i < x.size(); ++i)
        check_into(x[i], v, where + "[" + std::to_string(i) + "]", out,
                   depth + 1);
    } else if (key == "allOf") {
      for (auto& sub : v)
        check_into(x, sub, where, out, depth + 1);
    } else if (key == "anyOf" || key == "oneOf") {
      std::size_t fits = 0;
      std::vector<std::string> why;
      for (auto& sub : v) {
        std::vector<std::string> problems;
        check_into(x, sub, where, problems, depth + 1);
        if (problems.empty())
          ++fits;
        else
          why.push_back(problems.front());
      }
      if (fits == 0) {
        std::string all;
        for (auto& w : why)
          all += "\n    - " + w;
        fail("fits none of " + key + all);
      } else if (key == "oneOf" && fits > 1) {
        fail("fits " + std::to_string(fits) + " of oneOf (one expected)");
      }
    } else if (key == "not") {
      std::vector<std::string> problems;
      check_into(x, v, where, problems, depth + 1);
      if (problems.empty())
        fail("fits a schema it must not (not " + show(v) + ")");
    } else if (key == "minimum" || key == "maximum" ||
               key == "exclusiveMinimum" || key == "exclusiveMaximum") {
      if (!x.is_number())
        continue;
      auto n = x.get<double>(), bound = v.get<double>();
      bool ok = key == "minimum"            ? n >= bound
                : key == "maximum"          ? n <= bound
                : key == "exclusiveMinimum" ? n > bound
                                            : n < bound;
      if (!ok)
        fail(show(x) + " is out of bounds (" + key + " " + v.dump() + ")");
    } else if (key == "minLength" || key == "maxLength") {
      if (!x.is_string())
        continue;
      auto n = code_points(x.get_ref<const std::string&>());
      auto bound = v.get<std::size_t>();
      if (key == "minLength" ? n < bound : n > bound)
        fail("a string of " + std::to_string(n) + " characters (" + key + " " +
             v.dump() + ")");
    } else if (key == "minItems" || key == "maxItems") {
      if (!x.is_array())
        continue;
      auto bound = v.get<std::size_t>();
      if (key == "minItems" ? x.size() < bound : x.size() > bound)
        fail("an array of " + std::to_string(x.size()) + " items (" + key +
             " " + v.dump() + ")");
    } else if (key == "pattern") {
      if (!x.is_string())
        continue;
      std::regex re{v.get<std::string>(), std::regex::ECMAScript};
      if (!std::regex_search(x.get_ref<const std::string&>(), re))
        fail(show(x) + " does not match " + v.get<std::string>());
    } else if (key == "format") {
      if (!x.is_string())
        continue;
      auto f = v.get<std::string>();
      if (f == "date-time") {
        if (!is_date_time(x.get<std::string>()))
          fail(show(x) + " is not an RFC 3339 date-time");
      } else if (f == "uri") {
        if (!is_uri(x.get<std::string>()))
          fail(show(x) + " is not a URI");
      } else {
        fail("format '" + f + "' is not one the checker knows");
      }
    } else {
      fail("schema keyword '" + key + "' is not one the checker knows");
    }
  }
}

} // namespace tocsin::test

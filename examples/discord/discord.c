/* A Discord webhook transport, written as a third party would: C99, only
 * tocsin_plugin.h (with its helpers, tocsin_plugin_util.h) and the C
 * standard library. Also the example of docs/plugins.md.
 *
 * Options (all optional): {"username": "<name shown in Discord, 1..80 bytes>",
 *                          "thread_id": "<digits: post into that thread>"}
 * Build with the tocsin-dev package installed: `make` (see the Makefile:
 * the headers come from `pkg-config --cflags tocsin-plugin`); in tocsin's
 * own tree, tests/CMakeLists.txt builds it for the tests.
 */
#include "tocsin_plugin.h"
#include "tocsin_plugin_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Discord's limits, in characters; bytes are a safe bound for them. */
#define CONTENT_MAX 2000
#define TITLE_MAX 256
#define DESCRIPTION_MAX 4096
#define FIELD_MAX 1024
#define USERNAME_MAX 80

/* The host, kept from the entry point to log with. */
static const tocsin_host* the_host;

/* ---- Options: a flat JSON object of string values. ---------------------- */

typedef struct options {
  tocsin_str username;  /* raw JSON string content, still escaped */
  tocsin_str thread_id; /* digits */
} options;

static const char* skip_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    ++p;
  return p;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* Scans a JSON string at *pp (at its opening quote); `out` gets its content,
 * escapes left as written (so it can be copied into JSON as is). */
static int scan_string(const char** pp, const char* end, tocsin_str* out) {
  const char* p = *pp;
  if (p >= end || *p != '"')
    return 0;
  out->ptr = ++p;
  while (p < end && *p != '"') {
    if ((unsigned char)*p < 0x20)
      return 0;
    if (*p == '\\') {
      if (++p >= end)
        return 0;
      if (*p == 'u') {
        int i;
        for (i = 0; i < 4; ++i)
          if (++p >= end || !is_hex(*p))
            return 0;
      } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
        return 0;
      }
    }
    ++p;
  }
  if (p >= end)
    return 0;
  out->len = (size_t)(p - out->ptr);
  *pp = p + 1;
  return 1;
}

/* Parses `json` into `opt`; on error writes a message to `why`. */
static int parse_options(tocsin_str json, options* opt, char* why,
                         size_t why_size) {
  const char* p = json.ptr;
  const char* end = json.ptr + json.len;
  memset(opt, 0, sizeof *opt);
  p = skip_ws(p, end);
  if (p >= end || *p != '{') {
    snprintf(why, why_size, "options must be a JSON object");
    return 0;
  }
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}')
    goto done;
  for (;;) {
    tocsin_str key, value;
    tocsin_str* slot;
    if (!scan_string(&p, end, &key)) {
      snprintf(why, why_size, "options are not valid JSON");
      return 0;
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ':') {
      snprintf(why, why_size, "options are not valid JSON");
      return 0;
    }
    p = skip_ws(p + 1, end);
    if (tocsin_str_eq(key, "username")) {
      slot = &opt->username;
    } else if (tocsin_str_eq(key, "thread_id")) {
      slot = &opt->thread_id;
    } else {
      snprintf(why, why_size,
               "unknown option \"%.*s\" (discord accepts username, "
               "thread_id)",
               (int)(key.len > 40 ? 40 : key.len), key.ptr);
      return 0;
    }
    if (slot->ptr != NULL) {
      snprintf(why, why_size, "option %.*s given twice", (int)key.len, key.ptr);
      return 0;
    }
    if (!scan_string(&p, end, &value)) {
      snprintf(why, why_size, "option %.*s must be a string", (int)key.len,
               key.ptr);
      return 0;
    }
    *slot = value;
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
      p = skip_ws(p + 1, end);
      continue;
    }
    if (p < end && *p == '}')
      break;
    snprintf(why, why_size, "options are not valid JSON");
    return 0;
  }
done:
  if (skip_ws(p + 1, end) != end) {
    snprintf(why, why_size, "options are not valid JSON");
    return 0;
  }
  if (opt->username.ptr != NULL &&
      (opt->username.len == 0 || opt->username.len > USERNAME_MAX)) {
    snprintf(why, why_size, "username must be 1..%d bytes", USERNAME_MAX);
    return 0;
  }
  if (opt->thread_id.ptr != NULL) {
    size_t i;
    int ok = opt->thread_id.len > 0 && opt->thread_id.len <= 20;
    for (i = 0; ok && i < opt->thread_id.len; ++i)
      ok = opt->thread_id.ptr[i] >= '0' && opt->thread_id.ptr[i] <= '9';
    if (!ok) {
      snprintf(why, why_size, "thread_id must be 1..20 digits");
      return 0;
    }
  }
  return 1;
}

/* What an endpoint keeps: its options, copied out of the host's string. */
struct tocsin_instance {
  char username[USERNAME_MAX]; /* JSON string content, still escaped */
  size_t username_len;         /* 0: none */
  char thread_id[20];          /* digits */
  size_t thread_id_len;        /* 0: none */
};

static int open_endpoint(const tocsin_host_api* host, tocsin_call* call,
                         const tocsin_endpoint_view* endpoint,
                         tocsin_instance** instance) {
  options opt;
  char why[160];
  tocsin_instance* in;
  if (!parse_options(endpoint->options_json, &opt, why, sizeof why))
    return tocsin_fail(host, call, "invalid_options", why);
  in = calloc(1, sizeof *in);
  if (in == NULL)
    return tocsin_fail(host, call, "out_of_memory", "out of memory");
  /* parse_options checked both lengths. */
  if (opt.username.ptr != NULL)
    memcpy(in->username, opt.username.ptr, in->username_len = opt.username.len);
  if (opt.thread_id.ptr != NULL)
    memcpy(in->thread_id, opt.thread_id.ptr,
           in->thread_id_len = opt.thread_id.len);
  *instance = in;
  return 0;
}

static void close_endpoint(tocsin_instance* instance) {
  free(instance);
}

/* ---- The request. -------------------------------------------------------- */

/* Collects small pieces of the body and hands them to the host in chunks. */
typedef struct writer {
  const tocsin_host_api* host;
  tocsin_call* call;
  char buf[512];
  size_t len;
} writer;

static void flush(writer* w) {
  tocsin_str s;
  s.ptr = w->buf;
  s.len = w->len;
  if (w->len > 0)
    w->host->append_body(w->call, s);
  w->len = 0;
}

static void put(writer* w, const char* s, size_t n) {
  while (n > 0) {
    size_t room = sizeof w->buf - w->len;
    size_t k = n < room ? n : room;
    memcpy(w->buf + w->len, s, k);
    w->len += k;
    s += k;
    n -= k;
    if (w->len == sizeof w->buf)
      flush(w);
  }
}

static void puts_(writer* w, const char* s) {
  put(w, s, strlen(s));
}

/* Writes `s` (cut to `max` bytes) as a JSON string, with quotes. */
static void put_json_string(writer* w, tocsin_str s, size_t max) {
  static const char hex[] = "0123456789abcdef";
  size_t i, n = tocsin_utf8_cut(s, max);
  put(w, "\"", 1);
  for (i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s.ptr[i];
    char esc[6];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(w, esc, 2);
    } else if (c == '\n') {
      put(w, "\\n", 2);
    } else if (c == '\r') {
      put(w, "\\r", 2);
    } else if (c == '\t') {
      put(w, "\\t", 2);
    } else if (c < 0x20 || c == 0x7f) {
      esc[0] = '\\';
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 0xf];
      put(w, esc, 6);
    } else {
      put(w, (const char*)&s.ptr[i], 1);
    }
  }
  put(w, "\"", 1);
}

/* Discord embed colours by severity. */
static const char* colour(tocsin_str severity) {
  if (tocsin_str_eq(severity, "critical"))
    return "15158332"; /* red */
  if (tocsin_str_eq(severity, "high"))
    return "15105570"; /* orange */
  if (tocsin_str_eq(severity, "medium"))
    return "15844367"; /* yellow */
  return "3447003";    /* blue */
}

static void put_field(writer* w, const char* name, tocsin_str value,
                      int* first) {
  if (value.len == 0)
    return; /* Discord refuses empty field values */
  puts_(w, *first ? "{\"name\":\"" : ",{\"name\":\"");
  puts_(w, name);
  puts_(w, "\",\"value\":");
  put_json_string(w, value, FIELD_MAX);
  puts_(w, ",\"inline\":true}");
  *first = 0;
}

static int build_request(const tocsin_host_api* host, tocsin_call* call,
                         tocsin_instance* opt, const tocsin_event_view* event,
                         const tocsin_endpoint_view* endpoint) {
  char title[TITLE_MAX];
  writer w;
  int first = 1;
  const char* state = event->state == TOCSIN_EVENT_ACKNOWLEDGED ? "Acknowledged: "
                      : event->state == TOCSIN_EVENT_RESOLVED   ? "Resolved: "
                                                                : "";
  tocsin_str s;

  host->set_method(call, tocsin_lit("POST"));
  host->add_header(call, tocsin_lit("content-type"), tocsin_lit("application/json"));
  if (opt->thread_id_len > 0) {
    char url[2048];
    if (endpoint->url.len == 0)
      return tocsin_fail(host, call, "invalid_options", "thread_id needs a URL");
    const char* sep =
        memchr(endpoint->url.ptr, '?', endpoint->url.len) != NULL ? "&" : "?";
    int n = snprintf(url, sizeof url, "%.*s%sthread_id=%.*s",
                     (int)endpoint->url.len, endpoint->url.ptr, sep,
                     (int)opt->thread_id_len, opt->thread_id);
    if (n < 0 || (size_t)n >= sizeof url)
      return tocsin_fail(host, call, "url_too_long", "endpoint URL too long");
    s.ptr = url;
    s.len = (size_t)n;
    host->set_url(call, s);
  }

  w.host = host;
  w.call = call;
  w.len = 0;
  puts_(&w, "{");
  if (opt->username_len > 0) {
    /* Already valid JSON string content: copied as written. */
    puts_(&w, "\"username\":\"");
    put(&w, opt->username, opt->username_len);
    puts_(&w, "\",");
  }
  /* content: a one-line headline; the summary goes into the embed. */
  {
    char headline[200];
    int n = snprintf(headline, sizeof headline, "%s**%.*s** (%.*s)",
                     state, (int)event->type.len,
                     event->type.ptr, (int)event->severity.len,
                     event->severity.ptr);
    s.ptr = headline;
    s.len = n < 0                         ? 0
            : (size_t)n < sizeof headline ? (size_t)n
                                          : sizeof headline - 1;
    puts_(&w, "\"content\":");
    put_json_string(&w, s, CONTENT_MAX);
  }
  /* Never ping @everyone or anyone else named in an event. */
  puts_(&w, ",\"allowed_mentions\":{\"parse\":[]}");
  puts_(&w, ",\"embeds\":[{\"title\":");
  {
    int n = snprintf(title, sizeof title, "%.*s (%.*s)", (int)event->type.len,
                     event->type.ptr, (int)event->severity.len,
                     event->severity.ptr);
    s.ptr = title;
    s.len = n < 0 ? 0 : (size_t)n < sizeof title ? (size_t)n : sizeof title - 1;
    put_json_string(&w, s, TITLE_MAX);
  }
  puts_(&w, ",\"description\":");
  put_json_string(&w, event->summary, DESCRIPTION_MAX);
  puts_(&w, ",\"color\":");
  puts_(&w, colour(event->severity));
  if (event->timestamp.len > 0) {
    puts_(&w, ",\"timestamp\":");
    put_json_string(&w, event->timestamp, 64);
  }
  if (event->audit_url.len > 0) {
    puts_(&w, ",\"url\":");
    put_json_string(&w, event->audit_url, 2048);
  }
  puts_(&w, ",\"fields\":[");
  put_field(&w, "Agent", event->agent_id, &first);
  put_field(&w, "Event", event->id, &first);
  puts_(&w, "]}]}");
  flush(&w);
  return 0;
}

/* ---- The response. ------------------------------------------------------- */

static int classify(const tocsin_host_api* host, tocsin_call* call,
                    tocsin_instance* instance,
                    const tocsin_response_view* response) {
  char reason[200];
  int status = response->status;
  (void)instance; /* the answer means the same for every endpoint */
  if (status >= 200 && status < 300)
    return TOCSIN_OUTCOME_SUCCESS;
  if (status == 429) {
    host->set_reason(call, tocsin_lit("rate limited by Discord"));
    return TOCSIN_OUTCOME_RETRY;
  }
  if (status >= 500) {
    snprintf(reason, sizeof reason, "Discord unavailable: HTTP %d", status);
    host->set_reason(call, tocsin_lit(reason));
    return TOCSIN_OUTCOME_RETRY;
  }
  if (status == 404) {
    tocsin_log_line(the_host, TOCSIN_LOG_WARN,
                    "Discord answered 404: the webhook was deleted");
    host->set_reason(call, tocsin_lit("webhook deleted"));
    return TOCSIN_OUTCOME_DISABLE_ENDPOINT;
  }
  if (status >= 400) {
    /* Discord explains itself in a JSON body: keep its start. */
    size_t n =
        response->body_prefix.len > 120 ? 120 : response->body_prefix.len;
    snprintf(reason, sizeof reason, "rejected by Discord: HTTP %d%s%.*s",
             status, n > 0 ? " " : "", (int)n,
             n > 0 ? response->body_prefix.ptr : "");
    host->set_reason(call, tocsin_lit(reason));
    return TOCSIN_OUTCOME_PERMANENT;
  }
  snprintf(reason, sizeof reason, "unexpected HTTP %d", status);
  host->set_reason(call, tocsin_lit(reason));
  return TOCSIN_OUTCOME_RETRY;
}

/* ---- The table. ---------------------------------------------------------- */

/* Designated initializers: members added to the ABI later are zero. */
static const tocsin_transport discord = {
    .size = sizeof(tocsin_transport),
    .abi_version = TOCSIN_PLUGIN_ABI_VERSION,
    .name = "discord",
    .version = "1.0.0",
    .open_endpoint = open_endpoint,
    .close_endpoint = close_endpoint,
    .build_request = build_request,
    .classify = classify,
    .default_rate_per_second = 0.5, /* Discord: 30 messages a minute */
    .default_burst = 5,
};

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host* host, const char** reason) {
  (void)reason; /* it serves any host that has this entry point */
  the_host = host;
  tocsin_log_line(host, TOCSIN_LOG_DEBUG, "discord transport ready");
  return &discord;
}

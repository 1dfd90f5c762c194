/* tocsin_plugin.h: the C ABI between tocsin and its transport plugins,
 * version 2.
 *
 * A transport plugin is a shared object that turns an event into an HTTP
 * request for one kind of receiver (Discord, Slack, PagerDuty, ...) and
 * classifies the receiver's answer. The host does all I/O: connections, TLS,
 * timeouts, retries, signing. No memory allocated on one side is ever freed
 * on the other.
 *
 * Rules of the ABI:
 * - Only the C standard library (<stddef.h>, <stdint.h>) is used here, so a
 *   plugin can be written in C99 or anything that speaks the C ABI.
 * - TOCSIN_PLUGIN_ABI_VERSION changes only on an incompatible change, and
 *   the entry point's symbol name changes with it: the host reads which
 *   entry point a file exports before loading it, and refuses a plugin of
 *   another version with a message that says so (version 1 plugins export
 *   "tocsin_plugin_entry"; they must be rebuilt against this header).
 * - Structs only ever grow at the end. Each starts with `size` (its sizeof as
 *   the side that filled it was compiled), so a reader checks `size` before
 *   touching a field added later (see TOCSIN_HAS_FIELD).
 * - OWNERSHIP is noted on every pointer. "Borrowed" means: owned by the
 *   caller, valid only until the called function returns; copy what you keep.
 * - Threads: functions may be called from several threads at once, but calls
 *   for one endpoint instance never overlap. Nothing may block.
 * - Errors, not crashes: nothing may be thrown or longjmp'ed across the
 *   boundary.
 *
 * The life of a plugin: dlopen; tocsin_plugin_entry_v2 (once); for each
 * endpoint, open_endpoint (when it is configured and whenever its settings
 * change), then build_request and classify for its deliveries, then
 * close_endpoint; unload (once, after every instance is closed); dlclose.
 */
#ifndef TOCSIN_PLUGIN_H
#define TOCSIN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOCSIN_PLUGIN_ABI_VERSION 2u

/* The one symbol a plugin exports (see tocsin_plugin_entry_v2 below). */
#define TOCSIN_PLUGIN_ENTRY_SYMBOL "tocsin_plugin_entry_v2"
/* The entry point of ABI version 1, which this host refuses. */
#define TOCSIN_PLUGIN_ENTRY_SYMBOL_V1 "tocsin_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define TOCSIN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TOCSIN_PLUGIN_EXPORT
#endif

/* True when the struct at `p` (whose first member is `size`) was filled by a
 * side that knows `field`. */
#define TOCSIN_HAS_FIELD(type, p, field)                                       \
  ((p)->size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* A byte string: not NUL-terminated, `ptr` may be NULL when `len` is 0.
 * OWNERSHIP: always borrowed from whoever passes it. Text is UTF-8. */
typedef struct tocsin_str {
  const char* ptr;
  size_t len;
} tocsin_str;

/* Levels of the host's log. */
#define TOCSIN_LOG_DEBUG 0u
#define TOCSIN_LOG_INFO 1u
#define TOCSIN_LOG_WARN 2u
#define TOCSIN_LOG_ERROR 3u

/* The host, as the entry point is given it.
 * OWNERSHIP: owned by the host, valid until the plugin is unloaded: a plugin
 * may keep the pointer (to log from anywhere). */
typedef struct tocsin_host {
  uint32_t size;        /* sizeof(tocsin_host) of the host */
  uint32_t abi_version; /* TOCSIN_PLUGIN_ABI_VERSION of the host */
  /* Static, NUL-terminated: tocsin's version, e.g. "0.1.0". */
  const char* version;
  /* Writes one line to tocsin's log, naming the plugin (a line of at most
   * 1 KiB; control characters become spaces). `host` is the pointer the
   * entry point was given. Any thread, any time until unload. */
  void (*log)(const struct tocsin_host* host, uint32_t level,
              tocsin_str message);
} tocsin_host;

/* The per-call output of the host: an opaque object the host owns, created
 * for one call of a plugin function and gone when it returns. A plugin fills
 * it only through the tocsin_host_api callbacks and never keeps it. */
typedef struct tocsin_call tocsin_call;

/* Callbacks the host provides for one call. The host copies every string it
 * is given, so the plugin may pass pointers to its stack. Each returns 0 when
 * accepted and nonzero when refused (a header name that is not a token, a
 * value with CR or LF, a body over the host's limit, ...); a refusal fails
 * the whole call with a message naming the plugin, so a plugin may stop early
 * but need not check. Calling one outside the function it belongs to is
 * refused the same way.
 * OWNERSHIP: the table is owned by the host, valid during the call. */
typedef struct tocsin_host_api {
  uint32_t size; /* sizeof(tocsin_host_api) of the host */

  /* build_request only. */
  int (*set_method)(tocsin_call* call, tocsin_str method); /* default POST */
  int (*add_header)(tocsin_call* call, tocsin_str name, tocsin_str value);
  int (*append_body)(tocsin_call* call, tocsin_str bytes);
  /* Sends to this absolute URL instead of the endpoint's (e.g. to add a
   * query parameter). Subject to the same address policy as any endpoint. */
  int (*set_url)(tocsin_call* call, tocsin_str url);

  /* Any function: why it failed. `code` is a stable machine-readable word
   * (e.g. "invalid_options"); `message` is for humans. The last one wins. */
  int (*set_error)(tocsin_call* call, tocsin_str code, tocsin_str message);

  /* classify only: a short human-readable reason for the outcome, recorded
   * with the attempt (e.g. "webhook deleted"). */
  int (*set_reason)(tocsin_call* call, tocsin_str reason);

  /* Added in tocsin 0.12 (check with TOCSIN_HAS_FIELD before calling).
   * classify only, for a SUCCESS: the receiver's handle on what it was sent,
   * as a JSON object of at most 512 bytes (a Slack app's message:
   * {"channel": "C...", "ts": "..."}). The host keeps it with the delivery
   * (shown as its "receipt") and hands it back as tocsin_event_view.receipt
   * with every later notice of the event to this endpoint, so that the
   * transport can edit what it made instead of sending something new.
   * Refused when it is not a JSON object or too long. */
  int (*set_receipt)(tocsin_call* call, tocsin_str receipt_json);
} tocsin_host_api;

/* Where an event stands: a notification of a new event, or of an operator's
 * answer to it (a Slack message is replaced, a PagerDuty incident is
 * acknowledged or resolved with the same dedup_key). */
typedef enum tocsin_event_state {
  TOCSIN_EVENT_OPEN = 0,
  TOCSIN_EVENT_ACKNOWLEDGED = 1,
  TOCSIN_EVENT_RESOLVED = 2
} tocsin_event_state;

/* The event being delivered, normalized and validated by the host.
 * OWNERSHIP: borrowed, valid during the call, as are all its strings. */
typedef struct tocsin_event_view {
  uint32_t size;
  uint32_t state;          /* tocsin_event_state */
  tocsin_str id;           /* "evt_...", stable across retries */
  tocsin_str type;         /* e.g. "policy.denied" */
  tocsin_str severity;     /* info, low, medium, high or critical */
  tocsin_str agent_id;     /* may be empty */
  tocsin_str summary;      /* may be empty */
  tocsin_str timestamp;    /* RFC 3339, UTC, e.g. "2026-11-27T05:10:00.123Z" */
  tocsin_str payload_json; /* the whole normalized event as a JSON object */
  tocsin_str audit_url;    /* link to the audit record; may be empty */
  tocsin_str state_by;     /* who acknowledged or resolved it; empty if open */
  tocsin_str state_at;     /* when (RFC 3339); empty if open */
  /* Added in tocsin 0.11 (check with TOCSIN_HAS_FIELD): where to send the
   * news of an acknowledged or resolved event instead of the endpoint's URL
   * -- the response_url of the Slack message an operator clicked, to replace
   * it. Empty: the endpoint's URL. Only set for transports that follow an
   * event's state (TOCSIN_TRANSPORT_FOLLOWS_STATE); an https URL. */
  tocsin_str reply_url;
  /* Added in tocsin 0.12 (check with TOCSIN_HAS_FIELD). For a notice: the
   * receipt (see set_receipt) this endpoint's transport gave when the event
   * was delivered to it, a JSON object; empty when it gave none. */
  tocsin_str receipt;
  /* For a notice: how many other events the same answer acknowledged or
   * resolved (an escalation's members, or the escalation of a member that
   * was answered), e.g. to say "with 5 events of this episode". */
  uint32_t answered_along;
  /* The event on tocsin's dashboard ("{server.public_url}/#event={id}");
   * empty when no public URL is configured (then link nowhere rather than
   * to a dead page). */
  tocsin_str event_url;
} tocsin_event_view;

/* The endpoint an event goes to.
 * OWNERSHIP: borrowed, valid during the call, as are all its strings. */
typedef struct tocsin_endpoint_view {
  uint32_t size;
  tocsin_str id;  /* the endpoint's id; empty while validating a new one */
  tocsin_str url; /* absolute https URL, as configured */
  /* The endpoint's "options": a JSON object, "{}" if it has none. The host
   * parsed it under its own rules (at most 32 levels, 1000 members per
   * object, no duplicate keys). */
  tocsin_str options_json;
} tocsin_endpoint_view;

/* The receiver's answer. Only called when an HTTP response arrived: no
 * response at all (refused, reset, timed out) is always retried by the host.
 * OWNERSHIP: borrowed, valid during the call, as are all its strings. */
typedef struct tocsin_response_view {
  uint32_t size;
  int status;             /* HTTP status code, 100..999 */
  tocsin_str body_prefix; /* the first 1 KiB of the body at most */
  tocsin_str retry_after; /* the raw Retry-After header; empty if none */
} tocsin_response_view;

/* What classify returns. Any other value is taken as PERMANENT. */
typedef enum tocsin_outcome {
  TOCSIN_OUTCOME_SUCCESS = 0,   /* delivered */
  TOCSIN_OUTCOME_RETRY = 1,     /* try again later (the host's schedule) */
  TOCSIN_OUTCOME_PERMANENT = 2, /* will never succeed: dead-letter it */
  /* The endpoint itself is gone (e.g. its webhook was deleted): dead-letter
   * and flag the endpoint for the operator. */
  TOCSIN_OUTCOME_DISABLE_ENDPOINT = 3
} tocsin_outcome;

/* What a plugin keeps for one endpoint: its options, parsed once (defined by
 * the plugin; the host only passes the pointer back). */
typedef struct tocsin_instance tocsin_instance;

/* A plugin's table of functions.
 * OWNERSHIP: owned by the plugin, static: valid until the host unloads the
 * plugin, never written by the host. */
typedef struct tocsin_transport {
  uint32_t size;        /* sizeof(tocsin_transport) of the plugin */
  uint32_t abi_version; /* TOCSIN_PLUGIN_ABI_VERSION the plugin was built for */
  /* Static, NUL-terminated. The transport name endpoints refer to: 1..64 of
   * [a-z0-9_-], unique among the loaded plugins (e.g. "discord"). */
  const char* name;
  /* Static, NUL-terminated: the plugin's own version (e.g. "1.0.0"). */
  const char* version;

  /* Opens an endpoint: checks its options and sets *instance to what the
   * plugin keeps for it (or NULL if it needs nothing). Called when an
   * endpoint is configured (to check it: closed again at once), when it
   * starts, and whenever its settings change (the old instance is closed
   * once nothing uses it any more). `endpoint->id` is empty for an endpoint
   * being created. Returns 0 if the endpoint is usable; otherwise nonzero
   * after calling set_error (and *instance is ignored).
   * OWNERSHIP: the instance belongs to the plugin; the host hands it back to
   * close_endpoint exactly once. */
  int (*open_endpoint)(const tocsin_host_api* host, tocsin_call* call,
                       const tocsin_endpoint_view* endpoint,
                       tocsin_instance** instance);

  /* Frees what open_endpoint set. NULL if the plugin keeps nothing. */
  void (*close_endpoint)(tocsin_instance* instance);

  /* Builds the request for `event` to `endpoint` (opened as `instance`)
   * through set_method, add_header, append_body and set_url. The host adds
   * Host, Content-Length, User-Agent and any signature itself. Returns 0 on
   * success; otherwise nonzero after calling set_error (the delivery is
   * dead-lettered). */
  int (*build_request)(const tocsin_host_api* host, tocsin_call* call,
                       tocsin_instance* instance,
                       const tocsin_event_view* event,
                       const tocsin_endpoint_view* endpoint);

  /* Classifies the response to a request built above for the endpoint
   * opened as `instance`. Returns a tocsin_outcome, after calling set_reason
   * when there is more to say than the status code. */
  int (*classify)(const tocsin_host_api* host, tocsin_call* call,
                  tocsin_instance* instance,
                  const tocsin_response_view* response);

  /* TOCSIN_TRANSPORT_* flags. */
  uint32_t flags;
  /* The per-endpoint rate limit that suits the receiver (e.g. Slack: 1 per
   * second, burst 3): requests per second and burst. 0: no limit. An
   * endpoint's own rate_limit overrides it. */
  double default_rate_per_second;
  uint32_t default_burst;

  /* Called once before the host unloads the plugin, after every instance
   * was closed. NULL if there is nothing to do. */
  void (*unload)(void);

  /* Added in tocsin 0.13 (read with TOCSIN_HAS_FIELD). The endpoint options
   * that are credentials (a routing key, a bot token): a NULL-terminated
   * list of names of top-level members of "options", at most 32, each 1..64
   * bytes. The host never shows their values whole: its API and CLI show
   * an ellipsis (U+2026) and the value's last 4 characters ("\u2026abcd"),
   * and an update that sends that mask back keeps the stored value.
   * NULL: none.
   * OWNERSHIP: static, like the table. */
  const char* const* secret_options;

  /* New members are only ever added here, at the end. */
} tocsin_transport;

/* The host signs each request per Standard Webhooks (webhook-id,
 * webhook-timestamp, webhook-signature over the body the plugin built). */
#define TOCSIN_TRANSPORT_SIGNED 1u

/* The transport follows an event's state: when an operator acknowledges or
 * resolves an event this endpoint was sent, the host sends it the news too
 * (build_request with state ACKNOWLEDGED or RESOLVED), e.g. a PagerDuty
 * "acknowledge" with the trigger's dedup_key, or a Slack message replaced.
 * Without the flag an endpoint only ever gets events in state OPEN. */
#define TOCSIN_TRANSPORT_FOLLOWS_STATE 2u

/* The transport posts messages that people read in a channel (chat). With
 * FOLLOWS_STATE, an answer that covers several events at once (an
 * escalation and the events it was derived from) is told to such an
 * endpoint once: one notice, about the event that was answered (or the
 * first of the episode the endpoint was sent), with answered_along saying
 * how many went with it -- never one message per event. A delivery whose
 * classify set a receipt (a message the transport can edit in place) gets
 * a notice for each of its events, carrying the receipt. */
#define TOCSIN_TRANSPORT_MESSAGES 4u

/* The entry point, exported under TOCSIN_PLUGIN_ENTRY_SYMBOL. The host calls
 * it once after loading. Returns the plugin's table; or NULL if the plugin
 * cannot serve this host (a host version it does not support, a library it
 * misses), after pointing *reason at a NUL-terminated line saying why.
 * OWNERSHIP: the table and *reason are static (see tocsin_transport);
 * `host` is borrowed until unload (see tocsin_host). */
typedef const tocsin_transport* (*tocsin_plugin_entry_fn)(
    const tocsin_host* host, const char** reason);

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host* host, const char** reason);

#ifdef __cplusplus
}
#endif

#endif /* TOCSIN_PLUGIN_H */

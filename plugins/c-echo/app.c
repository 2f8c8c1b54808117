// c-echo: a Switchboard plugin in C, built with wit-bindgen's C generator,
// clang and wasi-libc (scripts/build-guests.sh). It serves the polyglot
// examples' contract, the same in every language (plugins/rust-echo,
// plugins/py-echo, plugins/js-echo):
//   walker `c_echo`  returns and reports {"echo": <context>, "lang": "c"};
//                    anonymous callers allowed (jac-cloud's `auth: False`)
//   guard  `c:*`     refuses a publish whose message has a "blocked" field
//   socket `/c-echo` answers each message with {"lang": "c", "echo": <message>},
//                    and each binary frame with the same bytes
//
// Strings cross the boundary as JSON text. The host hands the context and
// messages over as valid JSON, so they are spliced in as they are; this
// file needs no JSON library. Everything returned is heap memory: the
// generated post-return functions free it.

#include <stdlib.h>
#include <string.h>

#include "plugin.h"

// `prefix` + `middle` + `suffix` as a new string.
static void concat(plugin_string_t *out, const char *prefix, const plugin_string_t *middle,
                   const char *suffix) {
  size_t a = strlen(prefix), b = middle->len, c = strlen(suffix);
  uint8_t *buffer = malloc(a + b + c);
  if (!buffer) abort();
  memcpy(buffer, prefix, a);
  memcpy(buffer + a, middle->ptr, b);
  memcpy(buffer + a + b, suffix, c);
  out->ptr = buffer;
  out->len = a + b + c;
}

void exports_switchboard_plugin_meta_describe(exports_switchboard_plugin_meta_manifest_t *ret) {
  plugin_string_dup(&ret->name, "c-echo");
  plugin_string_dup(&ret->version, "1.0.0");

  switchboard_plugin_types_walker_decl_t *walker = calloc(1, sizeof *walker);
  plugin_string_dup(&walker->name, "c_echo");
  walker->transports = SWITCHBOARD_PLUGIN_TYPES_TRANSPORTS_WS | SWITCHBOARD_PLUGIN_TYPES_TRANSPORTS_HTTP;
  walker->anonymous = true;
  ret->walkers.ptr = walker;
  ret->walkers.len = 1;

  switchboard_plugin_types_guard_decl_t *guard = calloc(1, sizeof *guard);
  plugin_string_dup(&guard->target, "c:*");
  switchboard_plugin_types_operation_t *ops = malloc(sizeof *ops);
  ops[0] = SWITCHBOARD_PLUGIN_TYPES_OPERATION_PUBLISH;
  guard->operations.ptr = ops;
  guard->operations.len = 1;
  ret->guards.ptr = guard;
  ret->guards.len = 1;

  plugin_string_t *socket = malloc(sizeof *socket);
  plugin_string_dup(socket, "/c-echo");
  ret->sockets.ptr = socket;
  ret->sockets.len = 1;
}

bool exports_switchboard_plugin_walker_call(exports_switchboard_plugin_walker_walker_request_t *request,
                                            exports_switchboard_plugin_walker_walker_reply_t *ret,
                                            exports_switchboard_plugin_walker_plugin_error_t *err) {
  (void)err;
  plugin_string_t *report = malloc(sizeof *report);
  concat(report, "{\"echo\":", &request->context, ",\"lang\":\"c\"}");
  ret->status = 200;
  ret->reports.ptr = report;
  ret->reports.len = 1;
  ret->returns.is_some = true;
  concat(&ret->returns.val, "", report, "");
  exports_switchboard_plugin_walker_walker_request_free(request);
  return true;
}

// Whether the JSON text has a `"blocked"` key: the name in quotes followed
// (after blanks) by a colon. (A value "blocked" is followed by `,` or `}`.)
static bool has_blocked_key(const plugin_string_t *json) {
  static const char key[] = "\"blocked\"";
  const size_t n = sizeof key - 1;
  for (size_t i = 0; i + n <= json->len; i++) {
    if (memcmp(json->ptr + i, key, n) != 0) continue;
    size_t j = i + n;
    while (j < json->len && json->ptr[j] && strchr(" \t\r\n", json->ptr[j])) j++;
    if (j < json->len && json->ptr[j] == ':') return true;
  }
  return false;
}

void exports_switchboard_plugin_guard_check(exports_switchboard_plugin_guard_guard_request_t *request,
                                            exports_switchboard_plugin_guard_verdict_t *ret) {
  if (has_blocked_key(&request->payload)) {
    ret->tag = SWITCHBOARD_PLUGIN_TYPES_VERDICT_DENY;
    plugin_string_dup(&ret->val.deny, "blocked by c");
  } else {
    ret->tag = SWITCHBOARD_PLUGIN_TYPES_VERDICT_ALLOW;
  }
  exports_switchboard_plugin_guard_guard_request_free(request);
}

bool exports_switchboard_plugin_socket_on_open(exports_switchboard_plugin_socket_socket_open_t *conn,
                                               exports_switchboard_plugin_socket_plugin_error_t *err) {
  (void)err;
  exports_switchboard_plugin_socket_socket_open_free(conn);
  return true;
}

bool exports_switchboard_plugin_socket_on_message(plugin_string_t *conn_id, plugin_string_t *message,
                                                  exports_switchboard_plugin_socket_plugin_error_t *err) {
  plugin_string_t reply;
  concat(&reply, "{\"lang\":\"c\",\"echo\":", message, "}");
  bool ok = switchboard_plugin_host_notify_self(&reply, err);
  plugin_string_free(&reply);
  plugin_string_free(conn_id);
  plugin_string_free(message);
  return ok;
}

bool exports_switchboard_plugin_socket_on_binary(plugin_string_t *conn_id, plugin_list_u8_t *data,
                                                 exports_switchboard_plugin_socket_plugin_error_t *err) {
  bool ok = switchboard_plugin_host_notify_self_binary(data, err);
  plugin_string_free(conn_id);
  plugin_list_u8_free(data);
  return ok;
}

bool exports_switchboard_plugin_socket_on_channel(plugin_string_t *conn_id,
                                                  exports_switchboard_plugin_socket_channel_message_t *message,
                                                  exports_switchboard_plugin_socket_plugin_error_t *err) {
  (void)err;
  plugin_string_free(conn_id);
  exports_switchboard_plugin_socket_channel_message_free(message);
  return true;
}

bool exports_switchboard_plugin_socket_on_presence(plugin_string_t *conn_id,
                                                   exports_switchboard_plugin_socket_presence_event_t *event,
                                                   exports_switchboard_plugin_socket_plugin_error_t *err) {
  (void)err;
  plugin_string_free(conn_id);
  exports_switchboard_plugin_socket_presence_event_free(event);
  return true;
}

void exports_switchboard_plugin_socket_on_close(plugin_string_t *conn_id) { plugin_string_free(conn_id); }

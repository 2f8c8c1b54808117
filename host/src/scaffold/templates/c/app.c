// {{name}}: a Switchboard plugin in C (made by `switchboard plugin new`).
// `switchboard plugin build` generates the bindings (wit-bindgen c), then
// compiles with clang for wasm32-wasi and wraps the module as
// `{{name}}.wasm` in the plugins folder; the server loads it without a
// restart.
//
// - walker `{{ident}}`: returns (and reports) {"from": "{{name}}", "got": <context>}
// - guard on `{{name}}:*`: a publish whose message has a "blocked" key is refused
//
// Arguments are yours to free; what you return must be heap memory (the
// generated post-return code frees it). JSON crosses as text.

#include <stdlib.h>
#include <string.h>

#include "plugin.h"

// `prefix` + `middle` + `suffix`, as a new heap string.
static void concat(plugin_string_t *out, const char *prefix, const plugin_string_t *middle, const char *suffix) {
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
  plugin_string_dup(&ret->name, "{{name}}");
  plugin_string_dup(&ret->version, "0.1.0");
  switchboard_plugin_types_walker_decl_t *walker = calloc(1, sizeof *walker);
  plugin_string_dup(&walker->name, "{{ident}}");
  walker->transports = SWITCHBOARD_PLUGIN_TYPES_TRANSPORTS_WS | SWITCHBOARD_PLUGIN_TYPES_TRANSPORTS_HTTP;
  walker->anonymous = true;
  ret->walkers.ptr = walker;
  ret->walkers.len = 1;
  switchboard_plugin_types_guard_decl_t *guard = calloc(1, sizeof *guard);
  plugin_string_dup(&guard->target, "{{name}}:*");
  switchboard_plugin_types_operation_t *operations = malloc(sizeof *operations);
  operations[0] = SWITCHBOARD_PLUGIN_TYPES_OPERATION_PUBLISH;
  guard->operations.ptr = operations;
  guard->operations.len = 1;
  ret->guards.ptr = guard;
  ret->guards.len = 1;
  ret->sockets.ptr = NULL;
  ret->sockets.len = 0;
}

bool exports_switchboard_plugin_walker_call(exports_switchboard_plugin_walker_walker_request_t *request,
                                            exports_switchboard_plugin_walker_walker_reply_t *ret,
                                            exports_switchboard_plugin_walker_plugin_error_t *err) {
  (void)err;
  plugin_string_t *report = malloc(sizeof *report);
  concat(report, "{\"from\":\"{{name}}\",\"got\":", &request->context, "}");
  ret->status = 200;
  ret->reports.ptr = report;
  ret->reports.len = 1;
  ret->returns.is_some = true;
  concat(&ret->returns.val, "", report, "");
  exports_switchboard_plugin_walker_walker_request_free(request);
  return true;
}

// Whether the JSON text has a "blocked" key (the quoted name, then a colon).
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
    plugin_string_dup(&ret->val.deny, "blocked by {{name}}");
  } else {
    ret->tag = SWITCHBOARD_PLUGIN_TYPES_VERDICT_ALLOW;
  }
  exports_switchboard_plugin_guard_guard_request_free(request);
}

// The world exports sockets too; the manifest lists none, so the host
// never calls these.
bool exports_switchboard_plugin_socket_on_open(exports_switchboard_plugin_socket_socket_open_t *conn,
                                               exports_switchboard_plugin_socket_plugin_error_t *err) {
  (void)err;
  exports_switchboard_plugin_socket_socket_open_free(conn);
  return true;
}

bool exports_switchboard_plugin_socket_on_message(plugin_string_t *conn_id, plugin_string_t *message,
                                                  exports_switchboard_plugin_socket_plugin_error_t *err) {
  (void)err;
  plugin_string_free(conn_id);
  plugin_string_free(message);
  return true;
}

bool exports_switchboard_plugin_socket_on_binary(plugin_string_t *conn_id, plugin_list_u8_t *data,
                                                 exports_switchboard_plugin_socket_plugin_error_t *err) {
  (void)err;
  plugin_string_free(conn_id);
  plugin_list_u8_free(data);
  return true;
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

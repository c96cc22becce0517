/* Prints real JSON documents of the C ABI, one per line as NAME<TAB>JSON, for
 * scripts/check-c-install.sh to validate against docs/schemas/NAME.schema.json:
 *
 *   schema_payloads CONFIG_JSON DEVICE_SPEC
 *
 * Runs one issuance, activation and sign-in on DEVICE_SPEC (a software key) against the
 * session of CONFIG_JSON, and records the other documents on the way: the device list and
 * info, prompts, log records, the key, its record and audit log, a key list and page,
 * templates, the audit check, an error. Exits non-zero if a call that should work fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keysmith.h"

static void emit(const char *name, const char *json) {
    printf("%s\t%s\n", name, json);
    fflush(stdout);
}

static void on_prompt(void *ctx, const char *prompt_json) {
    (void)ctx;
    emit("prompt", prompt_json);
}

static void on_log(void *user_data, const ks_log_params *params) {
    int *count = user_data;
    if (*count < 20) {
        char buf[4096];
        /* the record as JSON for the schema check: level, target, message */
        char msg[2048];
        size_t j = 0;
        for (const char *p = params->message; *p && j < sizeof msg - 8; p++) {
            if (*p == '"' || *p == '\\') {
                msg[j++] = '\\';
                msg[j++] = *p;
            } else if ((unsigned char)*p < 0x20) {
                msg[j++] = ' ';
            } else {
                msg[j++] = *p;
            }
        }
        msg[j] = '\0';
        snprintf(buf, sizeof buf, "{\"level\":%d,\"target\":\"%s\",\"message\":\"%s\"}",
                 (int)params->level, params->target, msg);
        emit("log-record", buf);
    }
    (*count)++;
}

static int check(const char *step, ks_status st) {
    if (st == KS_OK) {
        return 0;
    }
    char *msg = NULL;
    ks_last_error(&msg);
    fprintf(stderr, "%s failed (status %d, %s): %s\n", step, (int)st, ks_status_str(st),
            msg ? msg : "");
    ks_string_free(msg);
    exit(1);
}

/* Runs a call that returns JSON in *out, emits it under NAME and frees it. */
#define EMIT(name, call)                                                                   \
    do {                                                                                   \
        char *out = NULL;                                                                  \
        check(name, call);                                                                 \
        emit(name, out);                                                                   \
        ks_string_free(out);                                                               \
    } while (0)

static void key_id_of(const char *json, char *out, size_t cap) {
    const char *start = strstr(json, "\"key_id\":\"");
    if (start == NULL) {
        fprintf(stderr, "no key_id in %s\n", json);
        exit(1);
    }
    start += strlen("\"key_id\":\"");
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= cap) {
        exit(1);
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: schema_payloads CONFIG_JSON DEVICE_SPEC\n");
        return 2;
    }
    int logged = 0;
    check("ks_log_set_callback", ks_log_set_callback(on_log, &logged));
    check("ks_log_configure", ks_log_configure("{\"level\":\"debug\",\"destination\":{\"kind\":\"none\"}}"));
    emit("session-config", argv[1]);

    ks_session *session = NULL;
    ks_device *device = NULL;
    check("ks_session_open", ks_session_open(argv[1], &session));
    ks_session_set_prompt_callback(session, on_prompt, NULL);
    EMIT("device-list", ks_device_list(&out));
    check("ks_device_open", ks_device_open(argv[2], &device));
    EMIT("device-info", ks_device_info(device, &out));
    EMIT("template-list", ks_template_list(session, &out));

    const char *params =
        "{\"template\":\"example-standard\",\"user\":\"kim@contoso.onmicrosoft.com\"}";
    emit("issue-params", params);
    char *issued = NULL;
    check("ks_key_issue", ks_key_issue(session, device, params, &issued));
    emit("key", issued);
    char key_id[256];
    key_id_of(issued, key_id, sizeof key_id);
    ks_string_free(issued);

    EMIT("key", ks_key_activate(session, device, key_id, "holder-pin-2468", &out));
    EMIT("sign-in", ks_key_sign_in(session, device, key_id, "holder-pin-2468", &out));
    EMIT("key-record", ks_key_get(session, key_id, &out));
    EMIT("key-list", ks_key_list(session, NULL, &out));
    EMIT("key-list-page", ks_key_list_page(session, NULL, 10, &out));
    EMIT("audit", ks_key_audit(session, key_id, &out));
    EMIT("audit-check", ks_audit_verify(session, &out));

    /* An error: a key that does not exist. */
    char *out = NULL;
    ks_status failed = ks_key_get(session, "no-such-key", &out);
    if (failed == KS_OK) {
        fprintf(stderr, "ks_key_get of an unknown key succeeded\n");
        return 1;
    }
    /* ks_last_error_json returns the stored error's status. */
    if (ks_last_error_json(&out) != failed || out == NULL) {
        fprintf(stderr, "ks_last_error_json gave no error\n");
        return 1;
    }
    emit("error", out);
    ks_string_free(out);

    ks_log_set_callback(NULL, NULL);
    ks_device_free(device);
    ks_session_free(session);
    if (logged == 0) {
        fprintf(stderr, "the log callback got no record\n");
        return 1;
    }
    return 0;
}

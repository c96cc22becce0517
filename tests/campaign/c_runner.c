/* The fault campaign's C runner: bad inputs at the C ABI (docs/fault-campaign.md).
 *
 * Reads one case per stdin line: ID TAB OP TAB ARG..., each argument "-" (a NULL pointer)
 * or "x" followed by the bytes in hex (so NUL-free non-UTF-8 bytes, tabs and newlines pass).
 * Runs the operation on fresh handles and answers one line: ID TAB STATUS TAB x<hex>, the
 * hex being ks_last_error_json on failure, else the result JSON (or "").
 * Built by scripts/fault-campaign.sh against bindings/c/include/keysmith.h. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keysmith.h"

#define MAX_ARGS 10

static char *args[MAX_ARGS];
static int nargs;

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes "-" to NULL, "x<hex>" to a NUL-terminated buffer (bytes after a NUL byte are
 * not seen by the library, as for any C caller). */
static char *decode(const char *field) {
    if (strcmp(field, "-") == 0) return NULL;
    size_t n = strlen(field + 1) / 2;
    char *out = malloc(n + 1);
    if (!out) abort();
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)(hexval(field[1 + 2 * i]) * 16 + hexval(field[2 + 2 * i]));
    }
    out[n] = '\0';
    return out;
}

static const char *arg(int i) { return i < nargs ? args[i] : NULL; }
static long long num(int i) { return arg(i) ? strtoll(arg(i), NULL, 10) : 0; }

static const char *KIM = "kim@contoso.onmicrosoft.com";

/* The bulk device callback: every issue row gets the software key named in ctx. */
static const char *bulk_device(void *ctx, const char *row_json) {
    (void)row_json;
    return (const char *)ctx;
}

static const char *bulk_device_null(void *ctx, const char *row_json) {
    (void)ctx;
    (void)row_json;
    return NULL;
}

static const char *bulk_device_bad_utf8(void *ctx, const char *row_json) {
    (void)ctx;
    (void)row_json;
    return "softkey:\xff\xfe";
}

/* Opens the session of args[0]; on failure the status is returned and *s is NULL. */
static ks_status open_session(ks_session **s) { return ks_session_open(arg(0), s); }

/* Issues the standard template to KIM on device `d` (serial `serial`); *key_id gets the
 * key id (malloc'd) on success. */
static ks_status issue_one(ks_session *s, ks_device *d, const char *serial, char **key_id) {
    char params[256];
    snprintf(params, sizeof params,
             "{\"template\":\"test-standard\",\"user\":\"%s\",\"serial\":\"%s\"}", KIM, serial);
    char *out = NULL;
    ks_status st = ks_key_issue(s, d, params, &out);
    if (st != KS_OK) return st;
    const char *p = strstr(out, "\"key_id\":\"");
    if (!p) {
        ks_string_free(out);
        return KS_INTERNAL;
    }
    p += strlen("\"key_id\":\"");
    const char *e = strchr(p, '"');
    *key_id = strndup(p, (size_t)(e - p));
    ks_string_free(out);
    return KS_OK;
}

/* Runs one case; *out gets the result JSON (library-allocated) if any. */
static ks_status run(const char *op, char **out) {
    ks_session *s = NULL;
    ks_device *d = NULL;
    ks_status st = KS_OK;
    char *key = NULL;
    *out = NULL;

#define SESSION()                          \
    do {                                   \
        st = open_session(&s);             \
        if (st != KS_OK) goto done;        \
    } while (0)
#define DEVICE(i)                                      \
    do {                                               \
        if (arg(i)) {                                  \
            st = ks_device_open(arg(i), &d);           \
            if (st != KS_OK) goto done;                \
        }                                              \
    } while (0)

    if (strcmp(op, "session_open") == 0) {
        st = open_session(&s);
    } else if (strcmp(op, "session_open_null_out") == 0) {
        st = ks_session_open(arg(0), NULL);
    } else if (strcmp(op, "template_check") == 0) {
        st = ks_template_check(arg(0), out);
    } else if (strcmp(op, "template_add") == 0) {
        SESSION();
        st = ks_template_add(s, arg(1), out);
    } else if (strcmp(op, "template_add_null_session") == 0) {
        st = ks_template_add(NULL, arg(0), out);
    } else if (strcmp(op, "log_configure") == 0) {
        st = ks_log_configure(arg(0));
    } else if (strcmp(op, "device_open") == 0) {
        st = ks_device_open(arg(0), &d);
    } else if (strcmp(op, "device_open_null_out") == 0) {
        st = ks_device_open(arg(0), NULL);
    } else if (strcmp(op, "device_info_null") == 0) {
        st = ks_device_info(NULL, out);
    } else if (strcmp(op, "issue") == 0) { /* CONFIG SPEC|NULL PARAMS */
        SESSION();
        DEVICE(1);
        st = ks_key_issue(s, d, arg(2), out);
    } else if (strcmp(op, "issue_null_session") == 0) { /* SPEC PARAMS */
        DEVICE(0);
        st = ks_key_issue(NULL, d, arg(1), out);
    } else if (strcmp(op, "issue_null_out") == 0) { /* CONFIG SPEC PARAMS */
        SESSION();
        DEVICE(1);
        st = ks_key_issue(s, d, arg(2), NULL);
    } else if (strcmp(op, "issue_and_activate") == 0) { /* CONFIG SPEC PARAMS PIN */
        SESSION();
        DEVICE(1);
        st = ks_key_issue_and_activate(s, d, arg(2), arg(3), out);
    } else if (strcmp(op, "activate") == 0) { /* CONFIG SPEC KEYID PIN */
        SESSION();
        DEVICE(1);
        st = ks_key_activate(s, d, arg(2), arg(3), out);
    } else if (strcmp(op, "activate_issued") == 0 || strcmp(op, "sign_in_issued") == 0 ||
               strcmp(op, "reissue_issued") == 0) { /* CONFIG SPEC PIN|PARAMS */
        SESSION();
        DEVICE(1);
        st = issue_one(s, d, "C1", &key);
        if (st != KS_OK) goto done;
        if (op[0] == 'a') {
            st = ks_key_activate(s, d, key, arg(2), out);
        } else if (op[0] == 's') {
            st = ks_key_sign_in(s, d, key, arg(2), out);
        } else {
            st = ks_key_reissue(s, d, key, arg(2), out);
        }
    } else if (strcmp(op, "sign_in") == 0) { /* CONFIG SPEC KEYID PIN */
        SESSION();
        DEVICE(1);
        st = ks_key_sign_in(s, d, arg(2), arg(3), out);
    } else if (strcmp(op, "revoke") == 0) { /* CONFIG KEYID FORCE */
        SESSION();
        st = ks_key_revoke(s, arg(1), (int32_t)num(2), out);
    } else if (strcmp(op, "inactivate") == 0) {
        SESSION();
        st = ks_key_inactivate(s, arg(1), out);
    } else if (strcmp(op, "retire") == 0) {
        SESSION();
        st = ks_key_retire(s, arg(1), out);
    } else if (strcmp(op, "unregister") == 0) {
        SESSION();
        st = ks_key_unregister(s, arg(1), out);
    } else if (strcmp(op, "key_get") == 0) {
        SESSION();
        st = ks_key_get(s, arg(1), out);
    } else if (strcmp(op, "key_get_null_out") == 0) {
        SESSION();
        st = ks_key_get(s, arg(1), NULL);
    } else if (strcmp(op, "key_audit") == 0) {
        SESSION();
        st = ks_key_audit(s, arg(1), out);
    } else if (strcmp(op, "key_list") == 0) { /* CONFIG FILTER */
        SESSION();
        st = ks_key_list(s, arg(1), out);
    } else if (strcmp(op, "key_list_page") == 0) { /* CONFIG AFTER LIMIT */
        SESSION();
        st = ks_key_list_page(s, arg(1), (uint32_t)num(2), out);
    } else if (strcmp(op, "pending_page") == 0) { /* CONFIG WITHIN AFTER LIMIT */
        SESSION();
        st = ks_pending_list_expiring_page(s, (uint64_t)num(1), arg(2), (uint32_t)num(3), out);
    } else if (strcmp(op, "bulk_create") == 0) { /* CONFIG KIND CSV */
        SESSION();
        st = ks_bulk_create(s, arg(1), arg(2), out);
    } else if (strcmp(op, "bulk_run") == 0 || strcmp(op, "bulk_run_null_cb") == 0 ||
               strcmp(op, "bulk_run_bad_cb") == 0) { /* CONFIG CSV OPTIONS SPEC */
        SESSION();
        char *job = NULL;
        st = ks_bulk_create(s, "issue", arg(1), &job);
        if (st != KS_OK) goto done;
        const char *p = strstr(job, "\"job_id\":");
        long long id = p ? strtoll(p + strlen("\"job_id\":"), NULL, 10) : -1;
        ks_string_free(job);
        ks_bulk_device_fn cb = strcmp(op, "bulk_run") == 0          ? bulk_device
                               : strcmp(op, "bulk_run_null_cb") == 0 ? bulk_device_null
                                                                     : bulk_device_bad_utf8;
        st = ks_bulk_run(s, id, arg(2), cb, NULL, (void *)arg(3), out);
    } else if (strcmp(op, "bulk_run_job") == 0) { /* CONFIG JOBID OPTIONS */
        SESSION();
        st = ks_bulk_run(s, num(1), arg(2), NULL, NULL, NULL, out);
    } else if (strcmp(op, "reconcile") == 0) { /* CONFIG REQUEST */
        SESSION();
        st = ks_drift_reconcile(s, arg(1), out);
    } else if (strcmp(op, "user_search") == 0) { /* CONFIG CONN PREFIX TOP */
        SESSION();
        st = ks_user_search(s, arg(1), arg(2), (uint32_t)num(3), out);
    } else if (strcmp(op, "idp_check") == 0) { /* CONFIG CONN */
        SESSION();
        uint64_t ms = 0;
        st = ks_idp_check(s, arg(1), &ms);
    } else if (strcmp(op, "self_issue") == 0) { /* CONFIG SPEC TOKEN NONCE TEMPLATE SERIAL PIN */
        SESSION();
        DEVICE(1);
        st = ks_key_self_issue(s, d, arg(2), arg(3), arg(4), arg(5), arg(6), out);
    } else if (strcmp(op, "self_set_pin") == 0) { /* CONFIG SPEC KEYID TOKEN NONCE PIN */
        SESSION();
        DEVICE(1);
        st = ks_key_self_set_pin(s, d, arg(2), arg(3), arg(4), arg(5), out);
    } else if (strcmp(op, "last_error_null") == 0) {
        ks_status prev = ks_template_check("[credential]\nname = 3\n", out);
        (void)prev;
        st = ks_last_error(NULL);
    } else if (strcmp(op, "last_error_json_null") == 0) {
        st = ks_last_error_json(NULL);
    } else if (strcmp(op, "set_prompt_null_session") == 0) {
        st = ks_session_set_prompt_callback(NULL, NULL, NULL);
    } else if (strcmp(op, "journal_replay_null_out") == 0) {
        SESSION();
        st = ks_journal_replay(s, NULL);
    } else {
        fprintf(stderr, "c_runner: unknown op %s\n", op);
        st = KS_INTERNAL;
    }
done:
    free(key);
    ks_device_free(d);
    ks_session_free(s);
    return st;
}

static void put_hex(const char *s) {
    putchar('x');
    for (const unsigned char *p = (const unsigned char *)s; s && *p; p++) printf("%02x", *p);
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL;
        char *id = strtok_r(line, "\t", &save);
        char *op = strtok_r(NULL, "\t", &save);
        if (!id || !op) continue;
        nargs = 0;
        for (char *f; nargs < MAX_ARGS && (f = strtok_r(NULL, "\t", &save));) {
            args[nargs++] = decode(f);
        }
        char *out = NULL;
        ks_status st = run(op, &out);
        char *err = NULL;
        if (st != KS_OK) ks_last_error_json(&err);
        printf("%s\t%d\t", id, (int)st);
        put_hex(st != KS_OK ? err : out);
        putchar('\n');
        fflush(stdout);
        ks_string_free(err);
        ks_string_free(out);
        for (int i = 0; i < nargs; i++) free(args[i]);
    }
    free(line);
    return 0;
}

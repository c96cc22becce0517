/* The keysmith C ABI end to end, as a CMS would drive it:
 *   lifecycle CONFIG_JSON DEVICE_SPEC
 * open session -> open device -> info -> issue -> activate -> sign_in with a wrong PIN
 * (the error as JSON) -> sign_in -> revoke, with the prompts counted, then error paths
 * (unknown key, NULL arguments, bad JSON), every
 * handle and string freed; then jobs: a bulk issue job (a software key per row from the
 * device callback, DEVICE_SPEC.rowN), a paged listing, a bulk revoke job and a
 * reconciliation. Prints "version=...", "header_version=...", "key_id=...",
 * "wrong_pin_error=JSON", "prompts=N", "bulk_progress=N", "ok" and exits 0
 * on success; prints the failing step and exits 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keysmith.h"

static int prompts;
static int touches;

static void on_prompt(void *ctx, const char *prompt_json) {
    int *count = (int *)ctx;
    (*count)++;
    if (strstr(prompt_json, "\"kind\":\"touch_key\"") != NULL) {
        touches++;
    }
}

/* What the bulk callbacks share (the ctx of ks_bulk_run). */
struct bulk_ctx {
    const char *base;   /* DEVICE_SPEC: each row gets BASE.rowN */
    char spec[1024];    /* the spec returned, reused for every row */
    int rows_asked;
    int progress_calls;
    int progress_done;
};

/* Device callback: the returned spec lives in ctx->spec until the next call. */
static const char *bulk_device(void *ctx, const char *row_json) {
    struct bulk_ctx *c = (struct bulk_ctx *)ctx;
    const char *line = strstr(row_json, "\"line\":");
    if (line == NULL) {
        return NULL;
    }
    c->rows_asked++;
    snprintf(c->spec, sizeof c->spec, "%s.row%d", c->base, atoi(line + 7));
    return c->spec;
}

static void bulk_progress(void *ctx, const char *progress_json) {
    struct bulk_ctx *c = (struct bulk_ctx *)ctx;
    c->progress_calls++;
    if (strstr(progress_json, "\"status\":\"done\"") != NULL) {
        c->progress_done++;
    }
}

/* Reads the integer value of "field" from a flat JSON object; -1 if absent. */
static long long json_int(const char *json, const char *field) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", field);
    const char *start = strstr(json, pattern);
    if (start == NULL) {
        return -1;
    }
    return atoll(start + strlen(pattern));
}

static int fail(const char *step, ks_status st) {
    char *msg = NULL;
    ks_status last = ks_last_error(&msg);
    fprintf(stderr, "%s failed: status %d %s (last %d): %s\n", step, (int)st, ks_status_str(st),
            (int)last, msg ? msg : "(no message)");
    ks_string_free(msg);
    return 1;
}

/* Copies the string value of "field" from a flat JSON object into out. */
static int json_field(const char *json, const char *field, char *out, size_t cap) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", field);
    const char *start = strstr(json, pattern);
    if (start == NULL) {
        return 0;
    }
    start += strlen(pattern);
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= cap) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

static int expect_state(const char *step, const char *json, const char *state) {
    char got[32];
    if (!json_field(json, "state", got, sizeof got) || strcmp(got, state) != 0) {
        fprintf(stderr, "%s: expected state %s in %s\n", step, state, json);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: lifecycle CONFIG_JSON DEVICE_SPEC\n");
        return 2;
    }
    const char *pin = "holder-pin-2468";
    ks_session *session = NULL;
    ks_device *device = NULL;
    char *out = NULL;
    char key_id[256];
    ks_status st;
    int rc = 1;

    printf("version=%s\n", ks_version());
    printf("header_version=%d.%d.%d\n", KEYSMITH_VERSION_MAJOR, KEYSMITH_VERSION_MINOR,
           KEYSMITH_VERSION_PATCH);
    if ((st = ks_session_open(argv[1], &session)) != KS_OK) {
        return fail("ks_session_open", st);
    }
    if ((st = ks_session_set_prompt_callback(session, on_prompt, &prompts)) != KS_OK) {
        fail("ks_session_set_prompt_callback", st);
        goto done;
    }
    if ((st = ks_template_list(session, &out)) != KS_OK) {
        fail("ks_template_list", st);
        goto done;
    }
    if (strcmp(out, "[\"test-standard\"]") != 0) {
        fprintf(stderr, "unexpected templates: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if ((st = ks_device_open(argv[2], &device)) != KS_OK) {
        fail("ks_device_open", st);
        goto done;
    }
    if ((st = ks_device_info(device, &out)) != KS_OK) {
        fail("ks_device_info", st);
        goto done;
    }
    if (strstr(out, "FIDO_2_") == NULL) {
        fprintf(stderr, "device info without a FIDO 2 version: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;

    st = ks_key_issue(session, device,
                      "{\"template\":\"test-standard\",\"user\":\"kim@contoso.onmicrosoft.com\"}", &out);
    if (st != KS_OK) {
        fail("ks_key_issue", st);
        goto done;
    }
    if (!expect_state("issue", out, "issued") || !json_field(out, "key_id", key_id, sizeof key_id)) {
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    printf("key_id=%s\n", key_id);
    int touches_after_issue = touches;
    if (touches_after_issue == 0) {
        fprintf(stderr, "issuance sent no touch prompt\n");
        goto done;
    }

    if ((st = ks_key_activate(session, device, key_id, pin, &out)) != KS_OK) {
        fail("ks_key_activate", st);
        goto done;
    }
    if (!expect_state("activate", out, "active")) {
        goto done;
    }
    ks_string_free(out);
    out = NULL;

    /* A wrong PIN: KS_DEVICE, and the error as JSON says why and how many tries are left. */
    st = ks_key_sign_in(session, device, key_id, "not-the-pin-1357", &out);
    if (st != KS_DEVICE || out != NULL) {
        fprintf(stderr, "wrong PIN: expected KS_DEVICE and no result, got %d (%s)\n", (int)st,
                ks_status_str(st));
        goto done;
    }
    char *error_json = NULL;
    if (ks_last_error_json(&error_json) != KS_DEVICE || error_json == NULL ||
        strstr(error_json, "\"reason\":\"pin_invalid\"") == NULL ||
        strstr(error_json, "\"retries_left\":") == NULL) {
        fprintf(stderr, "wrong PIN: last error %s\n", error_json ? error_json : "(null)");
        ks_string_free(error_json);
        goto done;
    }
    printf("wrong_pin_status=%s\n", ks_status_str(st));
    printf("wrong_pin_error=%s\n", error_json);
    ks_string_free(error_json);

    if ((st = ks_key_sign_in(session, device, key_id, pin, &out)) != KS_OK) {
        fail("ks_key_sign_in", st);
        goto done;
    }
    if (strstr(out, "\"method_id\":\"") == NULL) {
        fprintf(stderr, "sign-in result without a method id: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if (touches <= touches_after_issue) {
        fprintf(stderr, "sign-in sent no touch prompt\n");
        goto done;
    }

    if ((st = ks_key_list(session, "{\"state\":\"active\"}", &out)) != KS_OK) {
        fail("ks_key_list", st);
        goto done;
    }
    if (strstr(out, key_id) == NULL) {
        fprintf(stderr, "active key not listed: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;

    /* Every passkey the holder has: the one on this key, a security key keysmith issued. */
    if ((st = ks_user_passkeys(session, "kim@contoso.onmicrosoft.com", &out)) != KS_OK) {
        fail("ks_user_passkeys", st);
        goto done;
    }
    if (strstr(out, "\"kind\":\"security_key\"") == NULL || strstr(out, key_id) == NULL) {
        fprintf(stderr, "user passkeys without the issued key: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if ((st = ks_key_list_needs_reissue(session, &out)) != KS_OK || strcmp(out, "[]") != 0) {
        fprintf(stderr, "keys needing reissue: %d %s\n", st, out ? out : "");
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if ((st = ks_key_list_stale(session, 30, &out)) != KS_OK || strcmp(out, "[]") != 0) {
        fprintf(stderr, "stale keys: %d %s\n", st, out ? out : "");
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if (ks_key_list_stale(session, 0, &out) != KS_USAGE) {
        fprintf(stderr, "0 stale days not refused\n");
        goto done;
    }
    if ((st = ks_user_readiness(session, NULL, NULL, &out)) != KS_OK ||
        strstr(out, "\"issue_csv\":\"user,serial\\n") == NULL) {
        fprintf(stderr, "readiness: %d %s\n", st, out ? out : "");
        goto done;
    }
    ks_string_free(out);
    out = NULL;

    if ((st = ks_key_revoke(session, key_id, -1, &out)) != KS_OK) {
        fail("ks_key_revoke", st);
        goto done;
    }
    if (!expect_state("revoke", out, "revoked")) {
        goto done;
    }
    ks_string_free(out);
    out = NULL;

    /* The audit log verifies: hash chain and MACs under the session's PIN key. */
    if ((st = ks_audit_verify(session, &out)) != KS_OK) {
        fail("ks_audit_verify", st);
        goto done;
    }
    printf("audit_verify=%s\n", out);
    ks_string_free(out);
    out = NULL;

    /* Error path: an unknown key is a usage error with a message naming it. */
    st = ks_key_revoke(session, "no-such-key", 1, &out);
    if (st != KS_USAGE || out != NULL) {
        fprintf(stderr, "unknown key: expected KS_USAGE and no result, got %d\n", (int)st);
        goto done;
    }
    char *msg = NULL;
    ks_status last = ks_last_error(&msg);
    if (last != KS_USAGE || msg == NULL || strstr(msg, "no-such-key") == NULL) {
        fprintf(stderr, "unknown key: last error %d %s\n", (int)last, msg ? msg : "(null)");
        ks_string_free(msg);
        goto done;
    }
    printf("unknown_key_error=%s\n", msg);
    ks_string_free(msg);

    /* A revoked key cannot be activated: a transition error. */
    st = ks_key_activate(session, device, key_id, pin, &out);
    if (st != KS_TRANSITION) {
        fprintf(stderr, "activate revoked key: expected KS_TRANSITION, got %d\n", (int)st);
        goto done;
    }
    /* NULL arguments and bad JSON are usage errors, never crashes. */
    if (ks_key_issue(session, device, NULL, &out) != KS_USAGE ||
        ks_key_issue(session, device, "{not json", &out) != KS_USAGE ||
        ks_key_get(NULL, key_id, &out) != KS_USAGE ||
        ks_key_get(session, key_id, NULL) != KS_USAGE ||
        ks_last_error(NULL) != KS_USAGE) {
        fprintf(stderr, "NULL/bad input not refused as KS_USAGE\n");
        goto done;
    }
    /* A success clears the last error. */
    if ((st = ks_key_get(session, key_id, &out)) != KS_OK) {
        fail("ks_key_get", st);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if (ks_last_error(&msg) != KS_OK || msg != NULL) {
        fprintf(stderr, "last error not cleared by a success\n");
        ks_string_free(msg);
        goto done;
    }

    /* Jobs: bulk issue with a software key per row from the device callback. */
    struct bulk_ctx bulk;
    memset(&bulk, 0, sizeof bulk);
    bulk.base = argv[2];
    const char *issue_csv = "user,serial\n"
                            "adelev@contoso.onmicrosoft.com,C-BULK-1\n"
                            "alexw@contoso.onmicrosoft.com,C-BULK-2\n";
    if ((st = ks_bulk_create(session, "issue", issue_csv, &out)) != KS_OK) {
        fail("ks_bulk_create issue", st);
        goto done;
    }
    long long issue_job = json_int(out, "job_id");
    if (issue_job <= 0 || json_int(out, "total") != 2) {
        fprintf(stderr, "bulk issue job: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    st = ks_bulk_run(session, issue_job, "{\"template\":\"test-standard\"}", bulk_device,
                     bulk_progress, &bulk, &out);
    if (st != KS_OK) {
        fail("ks_bulk_run issue", st);
        goto done;
    }
    if (json_int(out, "done") != 2 || json_int(out, "failed") != 0 || bulk.rows_asked != 2 ||
        bulk.progress_calls != 2 || bulk.progress_done != 2) {
        fprintf(stderr, "bulk issue: asked %d, progress %d/%d: %s\n", bulk.rows_asked,
                bulk.progress_done, bulk.progress_calls, out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;

    /* Both bulk-issued keys wait for activation: two registrations expire within 2 h. */
    if ((st = ks_pending_list_expiring_page(session, 7200000, NULL, 10, &out)) != KS_OK) {
        fail("ks_pending_list_expiring_page", st);
        goto done;
    }
    if (strstr(out, "\"next_after\":null") == NULL || json_int(out, "challenge_expires_ms") <= 0 ||
        strstr(strstr(out, "challenge_expires_ms") + 1, "challenge_expires_ms") == NULL) {
        fprintf(stderr, "expiring page: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if (ks_pending_list_expiring_page(session, 1000, "{\"bogus\":1}", 10, &out) != KS_USAGE) {
        fprintf(stderr, "bad expiring cursor not refused\n");
        goto done;
    }

    /* Paged listing: three keys, two per page. */
    if ((st = ks_key_list_page(session, NULL, 2, &out)) != KS_OK) {
        fail("ks_key_list_page", st);
        goto done;
    }
    char after[256];
    if (!json_field(out, "next_after", after, sizeof after)) {
        fprintf(stderr, "first page without next_after: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if ((st = ks_key_list_page(session, after, 2, &out)) != KS_OK) {
        fail("ks_key_list_page 2", st);
        goto done;
    }
    if (strstr(out, "\"next_after\":null") == NULL || strstr(out, "\"key_id\"") == NULL) {
        fprintf(stderr, "second page: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if (ks_key_list_page(session, NULL, 0, &out) != KS_USAGE) {
        fprintf(stderr, "limit 0 not refused\n");
        goto done;
    }

    /* Bulk revoke of both users' keys (no device needed). */
    const char *revoke_csv = "user\n"
                             "adelev@contoso.onmicrosoft.com\n"
                             "alexw@contoso.onmicrosoft.com\n";
    if ((st = ks_bulk_create(session, "revoke", revoke_csv, &out)) != KS_OK) {
        fail("ks_bulk_create revoke", st);
        goto done;
    }
    long long revoke_job = json_int(out, "job_id");
    ks_string_free(out);
    out = NULL;
    bulk.progress_calls = 0;
    bulk.progress_done = 0;
    st = ks_bulk_run(session, revoke_job, "{\"workers\":2}", NULL, bulk_progress, &bulk, &out);
    if (st != KS_OK) {
        fail("ks_bulk_run revoke", st);
        goto done;
    }
    if (json_int(out, "done") != 2 || json_int(out, "failed") != 0 || bulk.progress_done != 2) {
        fprintf(stderr, "bulk revoke: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if ((st = ks_key_list(session, "{\"state\":\"revoked\"}", &out)) != KS_OK) {
        fail("ks_key_list revoked", st);
        goto done;
    }
    if (strstr(out, "C-BULK-1") == NULL || strstr(out, "C-BULK-2") == NULL) {
        fprintf(stderr, "bulk-revoked keys not listed as revoked: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    /* Bad job input: unknown kind, bad options, unknown job. */
    if (ks_bulk_create(session, "explode", revoke_csv, &out) != KS_USAGE ||
        ks_bulk_run(session, revoke_job, "{\"workers\":0}", NULL, NULL, NULL, &out) != KS_USAGE ||
        ks_bulk_run(session, 424242, NULL, NULL, NULL, NULL, &out) != KS_USAGE ||
        ks_bulk_run(session, revoke_job, NULL, NULL, NULL, NULL, NULL) != KS_USAGE) {
        fprintf(stderr, "bad bulk input not refused as KS_USAGE\n");
        goto done;
    }

    /* Reconcile every key holder: the repository and the IdP agree. */
    if ((st = ks_drift_reconcile(session, "{\"users\":[],\"fix\":false}", &out)) != KS_OK) {
        fail("ks_drift_reconcile", st);
        goto done;
    }
    if (strstr(out, "\"clean\":true") == NULL || json_int(out, "users_checked") != 3) {
        fprintf(stderr, "reconcile not clean over 3 users: %s\n", out);
        goto done;
    }
    ks_string_free(out);
    out = NULL;
    if (ks_drift_reconcile(session, "{\"delete_unknown\":true}", &out) != KS_USAGE) {
        fprintf(stderr, "delete_unknown without fix not refused\n");
        goto done;
    }
    printf("bulk_progress=%d\n", bulk.progress_calls);

    printf("prompts=%d\n", prompts);
    printf("touches=%d\n", touches);
    printf("ok\n");
    rc = 0;
done:
    ks_string_free(out);
    ks_device_free(device);
    ks_session_free(session);
    return rc;
}

/* Issue a security key to a user and let the holder activate it, through the C ABI
 * (libkeysmith, bindings/c/include/keysmith.h):
 *
 *   issue_and_activate CONFIG_JSON DEVICE_SPEC
 *
 * CONFIG_JSON is the session configuration (the same JSON Python and the Rust facade
 * take), DEVICE_SPEC e.g. softkey:/tmp/key.json, usb:/dev/hidraw3 or nfc:READER (nfc: needs
 * a library built with NFC: scripts/install-c.sh PREFIX --features nfc).
 * scripts/run-examples.sh builds it with gcc and runs it against the Entra emulator;
 * scripts/check-c-install.sh builds it as users do, against a copy installed under a
 * PREFIX: cc issue_and_activate.c $(pkg-config --cflags --libs keysmith). */
#include <stdio.h>
#include <string.h>

#include "keysmith.h"

static void on_prompt(void *ctx, const char *prompt_json) {
    (void)ctx;
    fprintf(stderr, "prompt: %s\n", prompt_json);
}

static int fail(const char *step, ks_status st) {
    char *msg = NULL;
    ks_last_error(&msg);
    fprintf(stderr, "%s failed (status %d): %s\n", step, (int)st, msg ? msg : "");
    ks_string_free(msg);
    return 1;
}

/* Copies the string value of "key_id" out of a key's JSON object. */
static int key_id_of(const char *json, char *out, size_t cap) {
    const char *start = strstr(json, "\"key_id\":\"");
    if (start == NULL) {
        return 0;
    }
    start += strlen("\"key_id\":\"");
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= cap) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: issue_and_activate CONFIG_JSON DEVICE_SPEC\n");
        return 2;
    }
    const char *pin = "holder-pin-2468";
    ks_session *session = NULL;
    ks_device *device = NULL;
    char *out = NULL;
    char key_id[256];
    ks_status st;
    int rc = 1;

    if ((st = ks_session_open(argv[1], &session)) != KS_OK) {
        return fail("ks_session_open", st);
    }
    ks_session_set_prompt_callback(session, on_prompt, NULL);
    if ((st = ks_device_open(argv[2], &device)) != KS_OK) {
        fail("ks_device_open", st);
        goto done;
    }
    st = ks_key_issue(session, device,
                      "{\"template\":\"example-standard\",\"user\":\"kim@contoso.onmicrosoft.com\"}",
                      &out);
    if (st != KS_OK || !key_id_of(out, key_id, sizeof key_id)) {
        fail("ks_key_issue", st);
        goto done;
    }
    printf("issued: %s\n", out);
    ks_string_free(out);
    out = NULL;

    if ((st = ks_key_activate(session, device, key_id, pin, &out)) != KS_OK) {
        fail("ks_key_activate", st);
        goto done;
    }
    printf("activated: %s\n", out);
    ks_string_free(out);
    out = NULL;

    if ((st = ks_key_sign_in(session, device, key_id, pin, &out)) != KS_OK) {
        fail("ks_key_sign_in", st);
        goto done;
    }
    printf("sign-in verified: %s\n", out);
    rc = 0;

done:
    ks_string_free(out);
    ks_device_free(device);
    ks_session_free(session);
    return rc;
}

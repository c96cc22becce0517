/* The device half of the split deployment in C (libkeysmith's ks_device_half_*): it runs
 * where the security key is attached, holds the holder's PIN and nothing else. The server
 * half runs in another process (examples/rust/split_server.rs, which starts this program)
 * and the two exchange only the split's signed messages, as hex lines on stdin/stdout:
 *
 *   split_device SERVER_PUBLIC_KEY_PEM DEVICE_SPEC
 *
 * First a station session: the operator's queued issuance runs on the key. Then a holder
 * session at another agent: the holder signs in (SIGNIN / TOKEN: the driver stands for the
 * browser and the IdP), and the job asks this program's PIN callback for the new PIN,
 * which goes to the key and into no message. Diagnostics go to stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keysmith.h"

static const char *HOLDER_PIN = "holder-pin-2468";

static uint64_t clock_ms = 0; /* the device half's monotonic clock (a step per message) */

static int fail(const char *step, ks_status st) {
    char *err = NULL;
    ks_last_error_json(&err);
    fprintf(stderr, "device: %s failed (status %d): %s\n", step, (int)st, err ? err : "");
    ks_string_free(err);
    return 0;
}

/* The holder's UI: writes the PIN into the library's buffer (which it zeroizes after). */
static int64_t on_pin(void *user, int32_t kind, uint32_t min_len, int32_t confirm, char *buf,
                      size_t buf_len) {
    (void)user;
    (void)confirm;
    size_t n = strlen(HOLDER_PIN);
    fprintf(stderr, "device: the holder types a %s PIN (at least %u)\n",
            kind == 0 ? "new" : "current", (unsigned)min_len);
    if (n > buf_len) {
        return -1;
    }
    memcpy(buf, HOLDER_PIN, n);
    return (int64_t)n;
}

static void on_prompt(void *user, const char *prompt_json) {
    (void)user;
    fprintf(stderr, "device: prompt %s\n", prompt_json);
}

static void send_hex(const char *verb, const char *extra, const uint8_t *b, size_t n) {
    printf("%s ", verb);
    if (extra != NULL) {
        printf("%s ", extra);
    }
    for (size_t i = 0; i < n; i++) {
        printf("%02x", b[i]);
    }
    printf("\n");
    fflush(stdout);
}

/* Reads one line from the server; returns it (malloc'd, no newline) or NULL. */
static char *read_line(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) {
        free(line);
        return NULL;
    }
    if (line[n - 1] == '\n') {
        line[n - 1] = '\0';
    }
    return line;
}

static uint8_t *unhex(const char *s, size_t *len) {
    size_t n = strlen(s) / 2;
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; b != NULL && i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(b);
            return NULL;
        }
        b[i] = (uint8_t)v;
    }
    *len = n;
    return b;
}

/* Copies the string value of "key" out of a flat JSON object (values without escapes). */
static int json_str(const char *json, const char *key, char *out, size_t cap) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
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

/* Receives a server reply line ("MSG hex") into the half; returns the event JSON. */
static char *receive_reply(ks_device_half *half) {
    char *line = read_line();
    if (line == NULL || strncmp(line, "MSG ", 4) != 0) {
        fprintf(stderr, "device: the server answered %s\n", line ? line : "nothing");
        free(line);
        return NULL;
    }
    size_t n = 0;
    uint8_t *reply = unhex(line + 4, &n);
    free(line);
    char *event = NULL;
    ks_status st = ks_device_half_receive(half, reply, n, ++clock_ms, &event);
    free(reply);
    if (st != KS_OK) {
        fail("receive", st);
        return NULL;
    }
    fprintf(stderr, "device: event %s\n", event);
    return event;
}

/* Sends `msg` (library-allocated; freed here) and runs every job answered; returns the
 * first other event's JSON. */
static char *exchange(ks_device_half *half, ks_device *key, uint8_t *msg, size_t len) {
    for (;;) {
        send_hex("MSG", NULL, msg, len);
        ks_bytes_free(msg, len);
        char *event = receive_reply(half);
        if (event == NULL || strstr(event, "\"event\":\"job\"") == NULL) {
            return event;
        }
        ks_string_free(event);
        ks_status st = ks_device_half_run_job(half, key, ++clock_ms, on_pin, on_prompt, NULL,
                                              &msg, &len);
        if (st != KS_OK) {
            fail("run_job", st);
            return NULL;
        }
    }
}

/* Opens a device half as `class` and establishes its session. */
static ks_device_half *agent(const char *class, const char *server_pem, int holder_ui) {
    /* The PEM has newlines: JSON-escape them. */
    size_t cap = strlen(server_pem) * 2 + 256;
    char *config = malloc(cap);
    size_t o = (size_t)snprintf(config, cap, "{\"server_keys\":[\"");
    for (const char *p = server_pem; *p; p++) {
        if (*p == '\n') {
            config[o++] = '\\';
            config[o++] = 'n';
        } else {
            config[o++] = *p;
        }
    }
    snprintf(config + o, cap - o,
             "\"],\"capabilities\":{\"interactive_holder_ui\":%s},"
             "\"host\":{\"name\":\"c-agent\",\"os\":\"linux\"},\"agent_version\":\"split_device.c\"}",
             holder_ui ? "true" : "false");
    ks_device_half *half = NULL;
    ks_status st = ks_device_half_open(config, &half);
    free(config);
    if (st != KS_OK) {
        fail("device_half_open", st);
        return NULL;
    }
    char *who = NULL;
    char public_key[256];
    uint8_t *hello = NULL;
    size_t n = 0;
    if ((st = ks_device_half_agent(half, &who)) != KS_OK ||
        !json_str(who, "agent_public_key", public_key, sizeof public_key) ||
        (st = ks_device_half_hello(half, &hello, &n)) != KS_OK) {
        fail("agent / hello", st);
        ks_string_free(who);
        ks_device_half_free(half);
        return NULL;
    }
    ks_string_free(who);
    char extra[320];
    snprintf(extra, sizeof extra, "%s %s", class, public_key);
    send_hex("HELLO", extra, hello, n);
    ks_bytes_free(hello, n);
    char *event = receive_reply(half);
    int ok = event != NULL && strstr(event, "\"established\"") != NULL;
    ks_string_free(event);
    if (!ok) {
        ks_device_half_free(half);
        return NULL;
    }
    return half;
}

static int station(ks_device *key, const char *server_pem) {
    ks_device_half *half = agent("station", server_pem, 0);
    if (half == NULL) {
        return 0;
    }
    uint8_t *msg = NULL;
    size_t n = 0;
    int ok = 0;
    char *event = NULL;
    ks_status st = ks_device_half_report(half, key, "SN-C-1", &msg, &n);
    if (st != KS_OK) {
        fail("report", st);
    } else if ((event = exchange(half, key, msg, n)) != NULL && strstr(event, "\"wait\"")) {
        ks_string_free(event);
        if ((st = ks_device_half_ready(half, &msg, &n)) != KS_OK) {
            fail("ready", st);
            event = NULL;
        } else {
            event = exchange(half, key, msg, n);
        }
        ok = event != NULL && strstr(event, "\"job_ack\"") && strstr(event, "\"issued\"");
    }
    ks_string_free(event);
    ks_device_half_free(half);
    return ok;
}

static int holder(ks_device *key, const char *server_pem, char *key_id, size_t cap) {
    ks_device_half *half = agent("holder", server_pem, 1);
    if (half == NULL) {
        return 0;
    }
    uint8_t *msg = NULL;
    size_t n = 0;
    int ok = 0;
    char client_id[128], nonce[128];
    char *event = NULL;
    char *line = NULL;
    ks_status st;
    if ((st = ks_device_half_report(half, key, NULL, &msg, &n)) != KS_OK) {
        fail("report", st);
        goto out;
    }
    ks_string_free(exchange(half, key, msg, n));
    if ((st = ks_device_half_request(half, "{\"operation\":\"activate\"}", &msg, &n)) != KS_OK) {
        fail("request", st);
        goto out;
    }
    event = exchange(half, key, msg, n);
    if (event == NULL || !json_str(event, "client_id", client_id, sizeof client_id) ||
        !json_str(event, "nonce", nonce, sizeof nonce)) {
        fprintf(stderr, "device: no sign-in asked\n");
        goto out;
    }
    ks_string_free(event);
    event = NULL;
    printf("SIGNIN %s %s\n", client_id, nonce);
    fflush(stdout);
    line = read_line();
    if (line == NULL || strncmp(line, "TOKEN ", 6) != 0) {
        fprintf(stderr, "device: no ID token\n");
        goto out;
    }
    st = ks_device_half_holder_auth(half, line + 6, &msg, &n);
    memset(line, 0, strlen(line)); /* the ID token is the caller's to wipe */
    if (st != KS_OK) {
        fail("holder_auth", st);
        goto out;
    }
    event = exchange(half, key, msg, n);
    ok = event != NULL && strstr(event, "\"job_ack\"") && strstr(event, "\"active\"") &&
         json_str(event, "key_id", key_id, cap);
out:
    free(line);
    ks_string_free(event);
    ks_device_half_free(half);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: split_device SERVER_PUBLIC_KEY_PEM DEVICE_SPEC\n");
        return 2;
    }
    ks_device *key = NULL;
    ks_status st = ks_device_open(argv[2], &key);
    if (st != KS_OK) {
        fail("device_open", st);
        return 1;
    }
    char key_id[256];
    int ok = station(key, argv[1]) && holder(key, argv[1], key_id, sizeof key_id);
    ks_device_free(key);
    if (!ok) {
        return 1;
    }
    printf("DONE %s\n", key_id);
    fflush(stdout);
    return 0;
}

/* Misuse the C ABI refuses (issue 14 items 4 and 6):
 *   misuse CONFIG_JSON DEVICE_SPEC
 * Thread A issues the key with serial TH0; its first "touch your key" prompt announces
 * itself and waits for the main thread's go. Meanwhile thread B issues the same device
 * with serial TH1: it must be refused at once with KS_DEVICE, reason "device_busy" (it
 * used to wait, then reset the key and issue it again, silently breaking TH0). Then A
 * finishes and TH0 still activates with its transport PIN. A serial with a line break
 * (or NUL, as the JSON escape) is refused with KS_USAGE, reason "serial_invalid".
 * Prints "second_status=", "second_error=", "first_key_id=", "serial_error=" and "ok";
 * exits 1 on the first failed step. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keysmith.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int first_started, go, second_done;

static void on_prompt(void *ctx, const char *prompt_json) {
    (void)ctx;
    if (strstr(prompt_json, "\"kind\":\"touch_key\"") == NULL) {
        return;
    }
    pthread_mutex_lock(&lock);
    if (!first_started) {
        first_started = 1;
        pthread_cond_broadcast(&changed);
        while (!go) {
            pthread_cond_wait(&changed, &lock);
        }
    }
    pthread_mutex_unlock(&lock);
}

struct issue {
    const ks_session *session;
    const ks_device *device;
    const char *serial;
    int is_second;
    ks_status status;
    char *out;
    char *error; /* ks_last_error_json, read on the calling thread (it is thread-local) */
};

static void *issue_thread(void *arg) {
    struct issue *a = (struct issue *)arg;
    char params[256];
    snprintf(params, sizeof params,
             "{\"template\":\"test-standard\",\"user\":\"kim@contoso.onmicrosoft.com\","
             "\"serial\":\"%s\"}",
             a->serial);
    a->status = ks_key_issue(a->session, a->device, params, &a->out);
    if (a->status != KS_OK) {
        ks_last_error_json(&a->error);
    }
    if (a->is_second) {
        pthread_mutex_lock(&lock);
        second_done = 1;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* Waits (at most `seconds`) until *flag is set; returns it. */
static int wait_for(int *flag, int seconds) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&lock);
    while (!*flag) {
        if (pthread_cond_timedwait(&changed, &lock, &until) != 0) {
            break;
        }
    }
    int set = *flag;
    pthread_mutex_unlock(&lock);
    return set;
}

static void release(void) {
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: misuse CONFIG_JSON DEVICE_SPEC\n");
        return 2;
    }
    ks_session *session = NULL;
    ks_device *device = NULL;
    int ok = 0;
    if (ks_session_open(argv[1], &session) != KS_OK || ks_device_open(argv[2], &device) != KS_OK) {
        fprintf(stderr, "open failed\n");
        goto done;
    }
    ks_session_set_prompt_callback(session, on_prompt, NULL);

    struct issue first = {session, device, "TH0", 0, KS_OK, NULL, NULL};
    struct issue second = {session, device, "TH1", 1, KS_OK, NULL, NULL};
    pthread_t a, b;
    pthread_create(&a, NULL, issue_thread, &first);
    if (!wait_for(&first_started, 60)) {
        fprintf(stderr, "thread A never reached its touch prompt\n");
        release();
        pthread_join(a, NULL);
        goto done;
    }
    pthread_create(&b, NULL, issue_thread, &second);
    /* Refused at once; bounded so that a second call that waits shows as a failure. */
    int answered = wait_for(&second_done, 10);
    release();
    pthread_join(b, NULL);
    pthread_join(a, NULL);
    printf("second_answered_while_busy=%d\n", answered);
    printf("second_status=%s\n", ks_status_str(second.status));
    printf("second_error=%s\n", second.error ? second.error : "(none)");
    if (!answered || second.status != KS_DEVICE || second.error == NULL ||
        strstr(second.error, "\"reason\":\"device_busy\"") == NULL) {
        fprintf(stderr, "the second issuance was not refused as device_busy\n");
        goto cleanup;
    }
    if (first.status != KS_OK || first.out == NULL || strstr(first.out, "-TH0\"") == NULL) {
        fprintf(stderr, "thread A's issuance failed: %s\n", first.error ? first.error : "?");
        goto cleanup;
    }
    const char *id = strstr(first.out, "\"key_id\":\"");
    char key_id[256] = {0};
    if (id != NULL) {
        id += strlen("\"key_id\":\"");
        size_t n = strcspn(id, "\"");
        if (n < sizeof key_id) {
            memcpy(key_id, id, n);
        }
    }
    printf("first_key_id=%s\n", key_id);
    char *out = NULL;
    if (ks_key_activate(session, device, key_id, "holder-pin-2468", &out) != KS_OK ||
        strstr(out, "\"state\":\"active\"") == NULL) {
        fprintf(stderr, "TH0 does not activate: the second issuance broke it\n");
        ks_string_free(out);
        goto cleanup;
    }
    ks_string_free(out);
    out = NULL;

    /* A serial that cannot be part of a key id, refused before the key is touched. */
    const char *bad[] = {
        "{\"template\":\"test-standard\",\"user\":\"kim@contoso.onmicrosoft.com\",\"serial\":\"a\\nb\"}",
        "{\"template\":\"test-standard\",\"user\":\"kim@contoso.onmicrosoft.com\",\"serial\":\"N\\u0000X\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ks_status st = ks_key_issue(session, device, bad[i], &out);
        char *err = NULL;
        ks_last_error_json(&err);
        int refused = st == KS_USAGE && out == NULL && err != NULL &&
                      strstr(err, "\"reason\":\"serial_invalid\"") != NULL;
        if (i == 0) {
            printf("serial_error=%s\n", err ? err : "(none)");
        }
        ks_string_free(err);
        ks_string_free(out);
        out = NULL;
        if (!refused) {
            fprintf(stderr, "bad serial %zu accepted (status %d)\n", i, (int)st);
            goto cleanup;
        }
    }
    printf("ok\n");
    ok = 1;
cleanup:
    ks_string_free(first.out);
    ks_string_free(first.error);
    ks_string_free(second.out);
    ks_string_free(second.error);
done:
    ks_device_free(device);
    ks_session_free(session);
    return ok ? 0 : 1;
}

/*
 * The libfido2 side of sig-bench: the same verifications as keysmith's, on the same
 * bytes, through libfido2's public API (set up as libfido2's regress/cred.c and
 * regress/assert.c do). Built by build.rs only when libfido2-dev is installed.
 */
#include <stddef.h>
#include <fido.h>
#include <fido/es256.h>

/* A packed credential, set up once; h_cred_verify times fido_cred_verify alone. */
void *h_cred_new(const unsigned char *authdata_raw, size_t authdata_len,
                 const unsigned char *x509, size_t x509_len,
                 const unsigned char *sig, size_t sig_len,
                 const unsigned char *cdh, const char *rp_id)
{
	fido_cred_t *c;

	fido_init(0);
	if ((c = fido_cred_new()) == NULL)
		return NULL;
	if (fido_cred_set_type(c, COSE_ES256) != FIDO_OK ||
	    fido_cred_set_clientdata_hash(c, cdh, 32) != FIDO_OK ||
	    fido_cred_set_rp(c, rp_id, NULL) != FIDO_OK ||
	    fido_cred_set_authdata_raw(c, authdata_raw, authdata_len) != FIDO_OK ||
	    fido_cred_set_rk(c, FIDO_OPT_FALSE) != FIDO_OK ||
	    fido_cred_set_uv(c, FIDO_OPT_FALSE) != FIDO_OK ||
	    fido_cred_set_x509(c, x509, x509_len) != FIDO_OK ||
	    fido_cred_set_sig(c, sig, sig_len) != FIDO_OK ||
	    fido_cred_set_fmt(c, "packed") != FIDO_OK) {
		fido_cred_free(&c);
		return NULL;
	}
	return c;
}

int h_cred_verify(const void *cred)
{
	return fido_cred_verify((const fido_cred_t *)cred);
}

void h_cred_free(void *cred)
{
	fido_cred_t *c = cred;
	fido_cred_free(&c);
}

/* The whole path from bytes: a fresh credential, every setter, verify, free. */
int h_cred_parse_verify(const unsigned char *authdata_raw, size_t authdata_len,
                        const unsigned char *x509, size_t x509_len,
                        const unsigned char *sig, size_t sig_len,
                        const unsigned char *cdh, const char *rp_id)
{
	void *c = h_cred_new(authdata_raw, authdata_len, x509, x509_len, sig, sig_len,
	    cdh, rp_id);
	int r;

	if (c == NULL)
		return -1;
	r = h_cred_verify(c);
	h_cred_free(c);
	return r;
}

/* One assertion statement (cdh, rp, signature) and its ES256 public key. */
void *h_assert_new(const unsigned char *cdh, const char *rp_id,
                   const unsigned char *sig, size_t sig_len)
{
	fido_assert_t *a;

	fido_init(0);
	if ((a = fido_assert_new()) == NULL)
		return NULL;
	if (fido_assert_set_clientdata_hash(a, cdh, 32) != FIDO_OK ||
	    fido_assert_set_rp(a, rp_id) != FIDO_OK ||
	    fido_assert_set_count(a, 1) != FIDO_OK ||
	    fido_assert_set_up(a, FIDO_OPT_FALSE) != FIDO_OK ||
	    fido_assert_set_uv(a, FIDO_OPT_FALSE) != FIDO_OK ||
	    fido_assert_set_sig(a, 0, sig, sig_len) != FIDO_OK) {
		fido_assert_free(&a);
		return NULL;
	}
	return a;
}

void *h_es256_pk_new(const unsigned char *xy, size_t len)
{
	es256_pk_t *pk = es256_pk_new();

	if (pk != NULL && es256_pk_from_ptr(pk, xy, len) != FIDO_OK)
		es256_pk_free(&pk);
	return pk;
}

/* As keysmith's verify_assertion: take the raw authData (parsed), then verify. */
int h_assert_verify(void *assert, const void *pk, const unsigned char *authdata_raw,
                    size_t authdata_len)
{
	fido_assert_t *a = assert;
	int r;

	if ((r = fido_assert_set_authdata_raw(a, 0, authdata_raw, authdata_len)) != FIDO_OK)
		return r;
	return fido_assert_verify(a, 0, COSE_ES256, pk);
}

void h_assert_free(void *assert, void *pk)
{
	fido_assert_t *a = assert;
	es256_pk_t *p = pk;

	fido_assert_free(&a);
	es256_pk_free(&p);
}

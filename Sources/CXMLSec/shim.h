#ifndef TESSERA_CXMLSEC_SHIM_H
#define TESSERA_CXMLSEC_SHIM_H

/* SwiftPM drops the -D flags pkg-config prints for xmlsec1-openssl; without them Swift sees other
   struct layouts than the library was built with (NOTES.md). They are defined here, before any
   xmlsec header, and the layout is checked against the library at start (XMLSecurity.swift). */
#ifndef XMLSEC_NO_SIZE_T
#define XMLSEC_NO_SIZE_T 1
#endif
#ifndef XMLSEC_CRYPTO_OPENSSL
#define XMLSEC_CRYPTO_OPENSSL 1
#endif
#ifndef XMLSEC_NO_CRYPTO_DYNAMIC_LOADING
#define XMLSEC_NO_CRYPTO_DYNAMIC_LOADING 1
#endif
#ifndef XMLSEC_OPENSSL3_ENGINES
#define XMLSEC_OPENSSL3_ENGINES 1
#endif
#ifndef XMLSEC_NO_GOST
#define XMLSEC_NO_GOST 1
#endif
#ifndef XMLSEC_NO_GOST2012
#define XMLSEC_NO_GOST2012 1
#endif
#ifndef __XMLSEC_FUNCTION__
#define __XMLSEC_FUNCTION__ __func__
#endif

#include <libxml/xmlversion.h>
/* Debian's libxml2 headers pull in ICU 72, which clashes with Foundation's own ICU. */
#undef LIBXML_ICU_ENABLED

#include <string.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlmemory.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/errors.h>
#include <xmlsec/io.h>
#include <xmlsec/keys.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/crypto.h>

/* ---- initialization: the version check and both crypto inits are macros ---- */

static inline int tessera_xmlsec_check_version(void) { return xmlSecCheckVersion(); }
static inline int tessera_xmlsec_crypto_app_init(void) { return xmlSecCryptoAppInit(NULL); }
static inline int tessera_xmlsec_crypto_init(void) { return xmlSecCryptoInit(); }

static inline void tessera_xmlsec_silent_errors(const char *file, int line, const char *func, const char *errorObject,
                                                const char *errorSubject, int reason, const char *msg) {
    (void)file; (void)line; (void)func; (void)errorObject; (void)errorSubject; (void)reason; (void)msg;
}
static inline void tessera_xmlsec_silence(void) { xmlSecErrorsSetCallback(tessera_xmlsec_silent_errors); }

/* libxml2's error handlers are per thread: every operation silences the thread it runs on, so
   nothing of a document (or an error quoting it) ever reaches stderr. */
static inline void tessera_libxml_silent_generic(void *ctx, const char *msg, ...) { (void)ctx; (void)msg; }
static inline void tessera_libxml_silent_structured(void *ctx, xmlErrorPtr error) { (void)ctx; (void)error; }
static inline void tessera_libxml_silence_thread(void) {
    xmlSetGenericErrorFunc(NULL, tessera_libxml_silent_generic);
    xmlSetStructuredErrorFunc(NULL, tessera_libxml_silent_structured);
}

/* ---- layout checks: the library zeroes exactly sizeof(its struct) on initialize ---- */

/* Returns 0 when the library's idea of the struct size equals ours; -1 otherwise. */
static inline int tessera_xmlsec_check_dsig_layout(void) {
    const size_t ours = sizeof(xmlSecDSigCtx);
    unsigned char *buffer = (unsigned char *)malloc(ours + 256);
    if (buffer == NULL) return -1;
    memset(buffer, 0xA5, ours + 256);
    if (xmlSecDSigCtxInitialize((xmlSecDSigCtxPtr)buffer, NULL) < 0) { free(buffer); return -1; }
    int ok = 1;
    for (size_t i = ours; i < ours + 256; i++) if (buffer[i] != 0xA5) { ok = 0; break; }
    /* reserved1 is the last member; memset by the library must have reached it */
    if (((xmlSecDSigCtxPtr)buffer)->reserved1 != NULL) ok = 0;
    xmlSecDSigCtxFinalize((xmlSecDSigCtxPtr)buffer);
    free(buffer);
    return ok ? 0 : -1;
}

static inline int tessera_xmlsec_check_enc_layout(void) {
    const size_t ours = sizeof(xmlSecEncCtx);
    unsigned char *buffer = (unsigned char *)malloc(ours + 256);
    if (buffer == NULL) return -1;
    memset(buffer, 0xA5, ours + 256);
    if (xmlSecEncCtxInitialize((xmlSecEncCtxPtr)buffer, NULL) < 0) { free(buffer); return -1; }
    int ok = 1;
    for (size_t i = ours; i < ours + 256; i++) if (buffer[i] != 0xA5) { ok = 0; break; }
    if (((xmlSecEncCtxPtr)buffer)->reserved1 != NULL) ok = 0;
    xmlSecEncCtxFinalize((xmlSecEncCtxPtr)buffer);
    free(buffer);
    return ok ? 0 : -1;
}

/* ---- strict parsing: no DTD at all ---- */

static inline void tessera_refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *externalID, const xmlChar *systemID) {
    (void)name; (void)externalID; (void)systemID;
    xmlParserCtxtPtr parser = (xmlParserCtxtPtr)ctx;
    parser->_private = (void *)parser;
    xmlStopParser(parser);
}

/* Parses with XML_PARSE_NONET and without NOENT/DTDLOAD/DTDATTR; a DOCTYPE (internal or external
   subset) stops the parser at once, before any entity is declared. Returns NULL for anything that
   is not a well-formed document without a DOCTYPE; *sawDoctype tells which. */
static inline xmlDocPtr tessera_parse_strict(const char *bytes, int size, int *sawDoctype) {
    *sawDoctype = 0;
    xmlParserCtxtPtr parser = xmlCreateMemoryParserCtxt(bytes, size);
    if (parser == NULL) return NULL;
    parser->sax->internalSubset = tessera_refuse_doctype;
    parser->sax->externalSubset = tessera_refuse_doctype;
    xmlCtxtUseOptions(parser, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    parser->_private = NULL;
    xmlParseDocument(parser);
    xmlDocPtr doc = parser->myDoc;
    int wellFormed = parser->wellFormed;
    int doctype = parser->_private != NULL;
    parser->myDoc = NULL;
    xmlFreeParserCtxt(parser);
    if (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL)) doctype = 1;
    *sawDoctype = doctype;
    if (!wellFormed || doctype) {
        if (doc != NULL) xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

static inline void tessera_xml_free(void *pointer) { xmlFree(pointer); }

/* ---- transform and key-data ids (macros in xmlsec) ---- */

static inline xmlSecTransformId tessera_transform_exc_c14n(void) { return xmlSecTransformExclC14NId; }
static inline xmlSecTransformId tessera_transform_enveloped(void) { return xmlSecTransformEnvelopedId; }
static inline xmlSecTransformId tessera_transform_sha1(void) { return xmlSecTransformSha1Id; }
static inline xmlSecTransformId tessera_transform_sha256(void) { return xmlSecTransformSha256Id; }
static inline xmlSecTransformId tessera_transform_sha384(void) { return xmlSecTransformSha384Id; }
static inline xmlSecTransformId tessera_transform_sha512(void) { return xmlSecTransformSha512Id; }
static inline xmlSecTransformId tessera_transform_rsa_sha1(void) { return xmlSecTransformRsaSha1Id; }
static inline xmlSecTransformId tessera_transform_rsa_sha256(void) { return xmlSecTransformRsaSha256Id; }
static inline xmlSecTransformId tessera_transform_rsa_sha384(void) { return xmlSecTransformRsaSha384Id; }
static inline xmlSecTransformId tessera_transform_rsa_sha512(void) { return xmlSecTransformRsaSha512Id; }
static inline xmlSecTransformId tessera_transform_ecdsa_sha1(void) { return xmlSecTransformEcdsaSha1Id; }
static inline xmlSecTransformId tessera_transform_ecdsa_sha256(void) { return xmlSecTransformEcdsaSha256Id; }
static inline xmlSecTransformId tessera_transform_ecdsa_sha384(void) { return xmlSecTransformEcdsaSha384Id; }
static inline xmlSecTransformId tessera_transform_ecdsa_sha512(void) { return xmlSecTransformEcdsaSha512Id; }
static inline xmlSecTransformId tessera_transform_rsa_oaep(void) { return xmlSecTransformRsaOaepId; }
static inline xmlSecTransformId tessera_transform_aes128_cbc(void) { return xmlSecTransformAes128CbcId; }
static inline xmlSecTransformId tessera_transform_aes192_cbc(void) { return xmlSecTransformAes192CbcId; }
static inline xmlSecTransformId tessera_transform_aes256_cbc(void) { return xmlSecTransformAes256CbcId; }
static inline xmlSecTransformId tessera_transform_aes128_gcm(void) { return xmlSecTransformAes128GcmId; }
static inline xmlSecTransformId tessera_transform_aes192_gcm(void) { return xmlSecTransformAes192GcmId; }
static inline xmlSecTransformId tessera_transform_aes256_gcm(void) { return xmlSecTransformAes256GcmId; }
static inline xmlSecTransformId tessera_transform_base64(void) { return xmlSecTransformBase64Id; }
static inline xmlSecKeyDataId tessera_key_data_aes(void) { return xmlSecKeyDataAesId; }

static inline xmlSecTransformUriType tessera_uri_same_document(void) { return xmlSecTransformUriTypeSameDocument; }
static inline xmlSecDSigStatus tessera_dsig_succeeded(void) { return xmlSecDSigStatusSucceeded; }

/* ---- keys ---- */

/* A public key from one DER certificate (the IdP's, from its metadata). */
static inline xmlSecKeyPtr tessera_key_from_certificate_der(const unsigned char *der, int size) {
    return xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)der, (xmlSecSize)size, xmlSecKeyDataFormatCertDer, NULL, NULL, NULL);
}

/* A private key from PEM (the SP's decryption key). */
static inline xmlSecKeyPtr tessera_key_from_private_pem(const unsigned char *pem, int size) {
    return xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)pem, (xmlSecSize)size, xmlSecKeyDataFormatPem, NULL, NULL, NULL);
}

/* Only the key value of `key`, without the certificate chain: what verification needs, and
   cheap to copy (OpenSSL 3 up-refs the EVP_PKEY). */
static inline xmlSecKeyPtr tessera_key_value_copy(xmlSecKeyPtr key) {
    xmlSecKeyDataPtr value = xmlSecKeyGetValue(key);
    if (value == NULL) return NULL;
    xmlSecKeyDataPtr copy = xmlSecKeyDataDuplicate(value);
    if (copy == NULL) return NULL;
    xmlSecKeyPtr result = xmlSecKeyCreate();
    if (result == NULL) { xmlSecKeyDataDestroy(copy); return NULL; }
    if (xmlSecKeySetValue(result, copy) < 0) { xmlSecKeyDataDestroy(copy); xmlSecKeyDestroy(result); return NULL; }
    return result;
}

/* An AES key of the given bytes (a content-encryption key recovered from EncryptedKey). */
static inline xmlSecKeyPtr tessera_aes_key(const unsigned char *bytes, int size) {
    return xmlSecKeyReadMemory(xmlSecKeyDataAesId, (const xmlSecByte *)bytes, (xmlSecSize)size);
}

#endif

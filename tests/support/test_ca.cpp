#include "tests/support/test_ca.hpp"

#include <fstream>
#include <memory>
#include <stdexcept>
#include <utility>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace tocsin::test {

namespace {

template <class T, void (*Free)(T*)>
struct ossl_deleter {
  void operator()(T* p) const { Free(p); }
};

using pkey_ptr =
    std::unique_ptr<EVP_PKEY, ossl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, ossl_deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, ossl_deleter<BIO, BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, ossl_deleter<BIGNUM, BN_free>>;
using ext_ptr =
    std::unique_ptr<X509_EXTENSION,
                    ossl_deleter<X509_EXTENSION, X509_EXTENSION_free>>;

struct general_names_deleter {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, general_names_deleter>;

struct general_name_deleter {
  void operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); }
};
using general_name_ptr = std::unique_ptr<GENERAL_NAME, general_name_deleter>;

[[noreturn]] void fail(const std::string& what) {
  // Include OpenSSL's own reason: "failed" alone makes fixtures undebuggable.
  std::string msg = "test_ca: " + what;
  if (auto code = ERR_get_error(); code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  ERR_clear_error();
  throw std::runtime_error(msg);
}

void check(int rc, const char* what) {
  if (rc <= 0)
    fail(what);
}

pkey_ptr make_key() {
  pkey_ptr key{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  if (!key)
    fail("EC P-256 key generation");
  return key;
}

std::string to_pem(const X509* cert) {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!bio)
    fail("BIO_new");
  check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string to_pem(const EVP_PKEY* key) {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!bio)
    fail("BIO_new");
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                 nullptr),
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

x509_ptr cert_from_pem(const std::string& pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    fail("BIO_new_mem_buf");
  x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
  if (!cert)
    fail("PEM_read_bio_X509");
  return cert;
}

pkey_ptr key_from_pem(const std::string& pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    fail("BIO_new_mem_buf");
  pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
  if (!key)
    fail("PEM_read_bio_PrivateKey");
  return key;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    throw std::runtime_error("test_ca: cannot write " + path.string());
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ext_ptr ext{X509V3_EXT_conf_nid(nullptr, &ctx, nid, value)};
  if (!ext)
    fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

void add_san(X509* cert, const std::vector<std::string>& dns_names,
             const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty())
    return;
  // Built by hand rather than via a config string so IPv6 literals (which
  // contain ':') need no escaping rules.
  general_names_ptr names{GENERAL_NAMES_new()};
  if (!names)
    fail("GENERAL_NAMES_new");
  for (const auto& dns : dns_names) {
    general_name_ptr gn{GENERAL_NAME_new()};
    ASN1_IA5STRING* str = ASN1_IA5STRING_new();
    if (!gn || !str ||
        !ASN1_STRING_set(str, dns.data(), static_cast<int>(dns.size()))) {
      ASN1_IA5STRING_free(str);
      fail("SAN DNS " + dns);
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, str);
    check(sk_GENERAL_NAME_push(names.get(), gn.get()), "sk_GENERAL_NAME_push");
    gn.release();
  }
  for (const auto& ip : ip_addresses) {
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
    if (!octets)
      fail("SAN IP address " + ip);
    general_name_ptr gn{GENERAL_NAME_new()};
    if (!gn) {
      ASN1_OCTET_STRING_free(octets);
      fail("GENERAL_NAME_new");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, octets);
    check(sk_GENERAL_NAME_push(names.get(), gn.get()), "sk_GENERAL_NAME_push");
    gn.release();
  }
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0,
                          X509V3_ADD_DEFAULT),
        "add subjectAltName");
}

// Common skeleton of every certificate we make. `issuer == nullptr` means
// self-issued (subject becomes the issuer name).
x509_ptr new_cert(const std::string& common_name, EVP_PKEY* subject_key,
                  X509* issuer, long valid_seconds) {
  x509_ptr cert{X509_new()};
  if (!cert)
    fail("X509_new");
  check(X509_set_version(cert.get(), 2), "X509_set_version"); // v3

  // Random serials: reusing a serial under one issuer makes verifiers that
  // cache by (issuer, serial) misbehave across re-issued test certificates.
  bn_ptr bn{BN_new()};
  if (!bn)
    fail("BN_new");
  check(BN_rand(bn.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
  ASN1_INTEGER* serial = X509_get_serialNumber(cert.get());
  if (!BN_to_ASN1_INTEGER(bn.get(), serial))
    fail("BN_to_ASN1_INTEGER");

  // Backdated an hour so small clock skew between processes is harmless.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_seconds))
    fail("X509_gmtime_adj");

  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(
            name, "CN", MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
            0),
        "X509_NAME_add_entry_by_txt");
  check(X509_set_issuer_name(cert.get(),
                             issuer ? X509_get_subject_name(issuer) : name),
        "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), subject_key), "X509_set_pubkey");
  return cert;
}

void add_leaf_extensions(X509* cert, X509* issuer,
                         const std::vector<std::string>& dns_names,
                         const std::vector<std::string>& ip_addresses) {
  add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature");
  add_ext(cert, issuer, NID_ext_key_usage, "serverAuth");
  add_ext(cert, issuer, NID_subject_key_identifier, "hash");
  add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
  add_san(cert, dns_names, ip_addresses);
}

pem_files write_leaf(const std::filesystem::path& dir, const std::string& name,
                     X509* cert, EVP_PKEY* key) {
  pem_files files{(dir / (name + ".crt")).string(),
                  (dir / (name + ".key")).string()};
  write_file(files.cert_file, to_pem(cert));
  write_file(files.key_file, to_pem(key));
  return files;
}

constexpr long one_day = 24L * 60 * 60;

} // namespace

test_ca::test_ca(std::filesystem::path dir) : dir_(std::move(dir)) {
  pkey_ptr key = make_key();
  x509_ptr cert = new_cert("tocsin test CA", key.get(), nullptr, 10 * one_day);
  // X509V3_set_ctx needs the issuer: for a root that is the cert itself.
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(cert.get(), cert.get(), NID_key_usage,
          "critical,keyCertSign,cRLSign");
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  add_ext(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()), "X509_sign (CA)");

  ca_cert_pem_ = to_pem(cert.get());
  ca_key_pem_ = to_pem(key.get());
  ca_file_ = (dir_ / "ca.pem").string();
  write_file(ca_file_, ca_cert_pem_);
}

pem_files test_ca::issue(const std::string& name,
                         const std::vector<std::string>& dns_names,
                         const std::vector<std::string>& ip_addresses) const {
  x509_ptr ca_cert = cert_from_pem(ca_cert_pem_);
  pkey_ptr ca_key = key_from_pem(ca_key_pem_);
  pkey_ptr key = make_key();
  x509_ptr cert = new_cert(name, key.get(), ca_cert.get(), one_day);
  add_leaf_extensions(cert.get(), ca_cert.get(), dns_names, ip_addresses);
  check(X509_sign(cert.get(), ca_key.get(), EVP_sha256()), "X509_sign (leaf)");
  return write_leaf(dir_, name, cert.get(), key.get());
}

pem_files test_ca::self_signed(const std::filesystem::path& dir,
                               const std::string& name,
                               const std::vector<std::string>& dns_names,
                               const std::vector<std::string>& ip_addresses) {
  pkey_ptr key = make_key();
  x509_ptr cert = new_cert(name, key.get(), nullptr, one_day);
  add_leaf_extensions(cert.get(), cert.get(), dns_names, ip_addresses);
  check(X509_sign(cert.get(), key.get(), EVP_sha256()),
        "X509_sign (self-signed)");
  return write_leaf(dir, name, cert.get(), key.get());
}

} // namespace tocsin::test

#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tocsin::test {

struct pem_files {
  std::string cert_file{};
  std::string key_file{};
};

// A throwaway certificate authority so TLS tests run against real, verifiable
// chains without shelling out to the openssl binary. Errors throw
// std::runtime_error: a broken fixture should fail the test loudly.
class test_ca {
public:
  // Creates a CA key and self-signed certificate and writes dir/"ca.pem".
  explicit test_ca(std::filesystem::path dir);

  // PEM file holding the CA certificate (what a client should trust).
  const std::string& ca_file() const { return ca_file_; }

  // Leaf certificate signed by this CA with the given subjectAltName entries
  // (IPv4 and IPv6 literals accepted), EKU serverAuth, valid from now-1h for
  // one day. Writes dir/name.crt and dir/name.key.
  pem_files issue(const std::string& name,
                  const std::vector<std::string>& dns_names,
                  const std::vector<std::string>& ip_addresses) const;

  // A self-signed leaf that no test_ca vouches for, to exercise rejection of
  // untrusted certificates.
  static pem_files self_signed(const std::filesystem::path& dir,
                               const std::string& name,
                               const std::vector<std::string>& dns_names,
                               const std::vector<std::string>& ip_addresses);

private:
  std::filesystem::path dir_;
  std::string ca_file_;
  // Kept as PEM so this header needs no OpenSSL types.
  std::string ca_cert_pem_;
  std::string ca_key_pem_;
};

} // namespace tocsin::test

#include "server/tls.h"

#include <cstring>
#include <fstream>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace oms::server {

namespace ssl = boost::asio::ssl;

namespace {

Status bad(const char* key, const std::string& why) {
  return Status::invalid_argument(fmt::format("config: {}: {}", key, why));
}

// The OpenSSL reason of the last error, else Asio's message.
std::string reason(const boost::system::error_code& ec) {
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    if (const char* r = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) return r;
  }
  return ec.message();
}

Status check_readable(const char* key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad(key, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_context(const Config& c) {
  if (Status s = check_readable("tls.cert_file", c.tls_cert_file); !s) return s;
  if (Status s = check_readable("tls.key_file", c.tls_key_file); !s) return s;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  const int min_version = c.tls_min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(native, min_version) != 1)
    return bad("tls.min_version", "not supported by this OpenSSL");

  boost::system::error_code ec;
  ERR_clear_error();
  ctx->use_certificate_chain_file(c.tls_cert_file, ec);
  if (ec) return bad("tls.cert_file", fmt::format("{} is not a PEM certificate (chain): {}", c.tls_cert_file, reason(ec)));
  ERR_clear_error();
  ctx->use_private_key_file(c.tls_key_file, ssl::context::pem, ec);
  if (ec) {
    const bool mismatch = ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
    return bad("tls.key_file", mismatch ? fmt::format("{} does not match the certificate in tls.cert_file",
                                                      c.tls_key_file)
                                        : fmt::format("{} is not a PEM private key: {}", c.tls_key_file, reason(ec)));
  }
  if (SSL_CTX_check_private_key(native) != 1)
    return bad("tls.key_file", fmt::format("{} does not match the certificate in tls.cert_file", c.tls_key_file));
  ERR_clear_error();
  return ctx;
}

}  // namespace oms::server

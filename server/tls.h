// The TLS server context (OpenSSL via boost::asio::ssl), built once at start
// from [tls] and shared by every TLS connection of both listeners.
//
// Thread-safety: the context is read-only once built; OpenSSL allows
// concurrent SSL objects created from one SSL_CTX.
#pragma once

#include <memory>

#include "common/status.h"
#include "server/config.h"

namespace boost::asio::ssl {
class context;
}

namespace oms::server {

// Loads tls.cert_file (chain allowed) and tls.key_file, checks that the key
// matches the certificate, and sets TLS >= tls.min_version (1.2 at least),
// no compression, the server's cipher preference. A missing or bad file is
// an error that names the key.
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const Config& config);

}  // namespace oms::server

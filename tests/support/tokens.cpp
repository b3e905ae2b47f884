#include "tests/support/tokens.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

#include <boost/json/serialize.hpp>

namespace oms::test {

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string mint_token(std::string_view secret, std::string_view user, std::chrono::seconds ttl) {
  oms::JwtClaims c;
  c.sub = std::string(user);
  c.iat = unix_now_s();
  c.exp = unix_now_s() + ttl.count();
  return oms::sign_jwt(c, secret);
}

std::string mint_token(std::string_view secret, const oms::JwtClaims& claims) {
  return oms::sign_jwt(claims, secret);
}

std::string expired_token(std::string_view secret, std::string_view user) {
  oms::JwtClaims c;
  c.sub = std::string(user);
  c.iat = unix_now_s() - 7200;
  c.exp = unix_now_s() - 3600;
  return oms::sign_jwt(c, secret);
}

std::string not_yet_valid_token(std::string_view secret, std::string_view user) {
  oms::JwtClaims c;
  c.sub = std::string(user);
  c.nbf = unix_now_s() + 3600;
  c.exp = unix_now_s() + 7200;
  return oms::sign_jwt(c, secret);
}

std::string bad_signature_token(std::string_view secret, std::string_view user) {
  std::string other(secret);
  other += "-but-not-the-servers";
  return mint_token(other, user);
}

std::string tampered_token(std::string_view secret, std::string_view user,
                           std::string_view other_user) {
  const std::string good = mint_token(secret, user);
  const auto dot1 = good.find('.');
  const auto dot2 = good.find('.', dot1 + 1);
  boost::json::object payload{{"sub", other_user}, {"exp", unix_now_s() + 3600}};
  return good.substr(0, dot1 + 1) + oms::base64url_encode(boost::json::serialize(payload)) +
         good.substr(dot2);
}

std::string alg_none_token(std::string_view user) {
  boost::json::object header{{"alg", "none"}, {"typ", "JWT"}};
  boost::json::object payload{{"sub", user}, {"iat", unix_now_s()}, {"exp", unix_now_s() + 3600}};
  return oms::base64url_encode(boost::json::serialize(header)) + "." +
         oms::base64url_encode(boost::json::serialize(payload)) + ".";
}

std::string hand_signed_token(const boost::json::object& header, const boost::json::object& payload,
                              std::string_view secret, std::string_view hmac) {
  const EVP_MD* md = hmac == "HS256"   ? EVP_sha256()
                     : hmac == "HS384" ? EVP_sha384()
                     : hmac == "HS512" ? EVP_sha512()
                                       : nullptr;
  if (md == nullptr) throw std::invalid_argument("hand_signed_token: unknown hmac");
  const std::string signing_input = oms::base64url_encode(boost::json::serialize(header)) + "." +
                                    oms::base64url_encode(boost::json::serialize(payload));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(md, secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
           &mac_len) == nullptr)
    throw std::runtime_error("HMAC failed");
  return signing_input + "." +
         oms::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

}  // namespace oms::test

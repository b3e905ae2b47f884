#include "common/jwt.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include <boost/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/ids.h"
#include "common/utf8.h"

namespace oms {
namespace {

namespace json = boost::json;

constexpr std::string_view kB64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t kHs256Bytes = 32;
// Untrusted values quoted in refusal messages are cut to this many bytes.
constexpr std::size_t kMaxQuotedBytes = 32;

// -1 for a byte outside the base64url alphabet.
constexpr std::array<std::int8_t, 256> make_b64_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < kB64Alphabet.size(); ++i)
    t[static_cast<unsigned char>(kB64Alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kB64Table = make_b64_table();

Status refuse(std::string reason) { return Status::unauthenticated(std::move(reason)); }

// `s` cut to at most kMaxQuotedBytes without splitting a UTF-8 sequence
// ("..." marks the cut).
std::string quoted(std::string_view s) {
  const std::string_view kept = utf8_prefix(s, kMaxQuotedBytes);
  if (kept.size() == s.size()) return std::string(s);
  return std::string(kept) + "...";
}

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  return r;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  static const unsigned char kEmptyKey = 0;  // OpenSSL dislikes a null key pointer
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kEmptyKey) : key.data();
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len) == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(mac), len);
}

enum class IntClaim { kOk, kMissing, kBadType };

// A NumericDate claim: a JSON integer, or a double with an integral value.
IntClaim get_int_claim(const json::object& o, std::string_view name, std::int64_t& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return IntClaim::kMissing;
  if (v->is_int64()) {
    out = v->get_int64();
    return IntClaim::kOk;
  }
  if (v->is_uint64()) {
    if (v->get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return IntClaim::kBadType;
    out = static_cast<std::int64_t>(v->get_uint64());
    return IntClaim::kOk;
  }
  if (v->is_double()) {
    double d = v->get_double();
    // 2^63 is exactly representable; [-2^63, 2^63) converts without overflow.
    constexpr double kTwo63 = 9223372036854775808.0;
    if (!std::isfinite(d) || std::trunc(d) != d || d < -kTwo63 || d >= kTwo63)
      return IntClaim::kBadType;
    out = static_cast<std::int64_t>(d);
    return IntClaim::kOk;
  }
  return IntClaim::kBadType;
}

// Parses `text` as a JSON object; nullopt if it is not one.
std::optional<json::object> parse_object(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

Result<JwtClaims> verify_unchecked(std::string_view token, std::string_view secret,
                                   const JwtVerifyOptions& opts) {
  if (secret.empty()) return refuse("no token secret configured");
  if (token.size() > kMaxTokenBytes) return refuse("token too long");
  if (token.empty()) return refuse("empty token");

  // ---- structure: header.payload.signature
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return refuse("malformed token: expected 3 segments");
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view sig_b64 = token.substr(dot2 + 1);

  // ---- header: alg pinned to HS256
  auto header_json = base64url_decode(header_b64);
  if (!header_json) return refuse("malformed token: header is not base64url");
  auto header = parse_object(*header_json);
  if (!header) return refuse("malformed token: header is not a JSON object");
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr) return refuse("token header has no alg");
  if (!alg->is_string()) return refuse("token alg must be a string");
  std::string_view alg_s(alg->get_string().data(), alg->get_string().size());
  if (alg_s != "HS256") return refuse("alg " + quoted(alg_s) + " not accepted");
  if (const json::value* typ = header->if_contains("typ")) {
    if (!typ->is_string() || typ->get_string() != "JWT") return refuse("token typ not accepted");
  }
  // RFC 7515 §4.1.11: an extension we do not understand must not be ignored.
  if (header->contains("crit")) return refuse("token crit header not supported");

  // ---- signature over "header.payload", compared in constant time
  auto sig = base64url_decode(sig_b64);
  if (!sig) return refuse("malformed token: signature is not base64url");
  std::string expected = hmac_sha256(secret, token.substr(0, dot2));
  if (expected.size() != kHs256Bytes) return refuse("cannot compute token signature");
  if (!constant_time_equal(*sig, expected)) return refuse("bad signature");

  // ---- payload claims
  auto payload_json = base64url_decode(payload_b64);
  if (!payload_json) return refuse("malformed token: payload is not base64url");
  auto payload = parse_object(*payload_json);
  if (!payload) return refuse("malformed token: payload is not a JSON object");

  JwtClaims claims;
  const json::value* sub = payload->if_contains("sub");
  if (sub == nullptr) return refuse("token has no sub");
  if (!sub->is_string()) return refuse("token sub must be a string");
  auto user = normalize_user_id(std::string_view(sub->get_string().data(), sub->get_string().size()));
  if (!user) return refuse("token sub is not a valid user id");
  claims.sub = std::move(*user);

  switch (get_int_claim(*payload, "exp", claims.exp)) {
    case IntClaim::kMissing: return refuse("token has no exp");
    case IntClaim::kBadType: return refuse("token exp must be an integer");
    case IntClaim::kOk: break;
  }
  if (opts.now_s > saturating_add(claims.exp, opts.leeway_s)) return refuse("token expired");

  std::int64_t nbf = 0;
  switch (get_int_claim(*payload, "nbf", nbf)) {
    case IntClaim::kMissing: break;
    case IntClaim::kBadType: return refuse("token nbf must be an integer");
    case IntClaim::kOk:
      if (saturating_add(opts.now_s, opts.leeway_s) < nbf) return refuse("token not yet valid (nbf)");
      claims.nbf = nbf;
      break;
  }

  std::int64_t iat = 0;
  switch (get_int_claim(*payload, "iat", iat)) {
    case IntClaim::kMissing: break;
    case IntClaim::kBadType: return refuse("token iat must be an integer");
    case IntClaim::kOk:
      if (iat > saturating_add(opts.now_s, opts.leeway_s)) return refuse("token issued in the future (iat)");
      claims.iat = iat;
      break;
  }

  if (const json::value* iss = payload->if_contains("iss")) {
    if (!iss->is_string()) return refuse("token iss must be a string");
    claims.iss = std::string(iss->get_string().data(), iss->get_string().size());
  }
  if (opts.issuer) {
    if (!claims.iss) return refuse("token has no iss");
    if (*claims.iss != *opts.issuer) return refuse("token iss not accepted");
  }

  // aud: a string or an array of strings (RFC 7519 §4.1.3).
  std::vector<std::string> auds;
  if (const json::value* aud = payload->if_contains("aud")) {
    if (aud->is_string()) {
      auds.emplace_back(aud->get_string().data(), aud->get_string().size());
    } else if (aud->is_array()) {
      for (const json::value& a : aud->get_array()) {
        if (!a.is_string()) return refuse("token aud must be a string or an array of strings");
        auds.emplace_back(a.get_string().data(), a.get_string().size());
      }
    } else {
      return refuse("token aud must be a string or an array of strings");
    }
  }
  if (opts.audience) {
    if (auds.empty()) return refuse("token has no aud");
    bool found = false;
    for (const auto& a : auds) found = found || a == *opts.audience;
    if (!found) return refuse("token aud not accepted");
    claims.aud = *opts.audience;
  } else if (!auds.empty()) {
    claims.aud = auds.front();
  }
  return claims;
}

}  // namespace

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(kB64Alphabet[(v >> 6) & 63]);
    out.push_back(kB64Alphabet[v & 63]);
  }
  std::size_t rest = in.size() - i;
  if (rest == 1) {
    std::uint32_t v = byte(i) << 16;
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(kB64Alphabet[(v >> 6) & 63]);
  }
  return out;
}

// Strict: no padding, no characters outside the alphabet, and the unused low
// bits of the last character must be zero (one encoding per byte string, so a
// signature cannot be re-spelled).
std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    std::int8_t d = kB64Table[static_cast<unsigned char>(c)];
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string sign_jwt(const JwtClaims& claims, std::string_view secret) {
  json::object header;
  header["alg"] = "HS256";
  header["typ"] = "JWT";
  json::object payload;
  payload["sub"] = claims.sub;
  payload["exp"] = claims.exp;
  if (claims.nbf) payload["nbf"] = *claims.nbf;
  if (claims.iat) payload["iat"] = *claims.iat;
  if (claims.iss) payload["iss"] = *claims.iss;
  if (claims.aud) payload["aud"] = *claims.aud;
  std::string token = base64url_encode(json::serialize(header));
  token.push_back('.');
  token += base64url_encode(json::serialize(payload));
  std::string mac = hmac_sha256(secret, token);
  token.push_back('.');
  token += base64url_encode(mac);
  return token;
}

Result<JwtClaims> verify_jwt(std::string_view token, std::string_view secret,
                             const JwtVerifyOptions& opts) {
  try {
    return verify_unchecked(token, secret, opts);
  } catch (const std::exception&) {  // bad_alloc from the JSON parser
    return refuse("malformed token");
  }
}

std::string random_hex(std::size_t n_bytes) {
  std::vector<unsigned char> buf(n_bytes);
  if (n_bytes > 0 && RAND_bytes(buf.data(), static_cast<int>(n_bytes)) != 1) {
    // Without a working CSPRNG no secret or session id can be trusted.
    std::fputs("oms: RAND_bytes failed; cannot generate random data\n", stderr);
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n_bytes * 2);
  for (unsigned char b : buf) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace oms

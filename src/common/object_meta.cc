#include "common/object_meta.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <ostream>

namespace shoal {
namespace {

// C# keywords: not identifiers, so Azure refuses them as metadata names.
constexpr std::array<std::string_view, 77> kCSharpKeywords = {
    "abstract", "as",        "base",      "bool",     "break",     "byte",     "case",
    "catch",    "char",      "checked",   "class",    "const",     "continue", "decimal",
    "default",  "delegate",  "do",        "double",   "else",      "enum",     "event",
    "explicit", "extern",    "false",     "finally",  "fixed",     "float",    "for",
    "foreach",  "goto",      "if",        "implicit", "in",        "int",      "interface",
    "internal", "is",        "lock",      "long",     "namespace", "new",      "null",
    "object",   "operator",  "out",       "override", "params",    "private",  "protected",
    "public",   "readonly",  "ref",       "return",   "sbyte",     "sealed",   "short",
    "sizeof",   "stackalloc", "static",   "string",   "struct",    "switch",   "this",
    "throw",    "true",      "try",       "typeof",   "uint",      "ulong",    "unchecked",
    "unsafe",   "ushort",    "using",     "virtual",  "void",      "volatile", "while"};

Status CheckValue(std::string_view what, const std::string& value) {
  if (value.empty()) {
    return Status::InvalidArgument(std::string(what) + " is empty: leave it out instead");
  }
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return Status::InvalidArgument(std::string(what) +
                                     " has a byte outside printable ASCII, which Azure and S3 "
                                     "headers cannot carry as it is: encode it (e.g. RFC 2047)");
    }
  }
  if (value.front() == ' ' || value.back() == ' ') {
    return Status::InvalidArgument(std::string(what) +
                                   " starts or ends with a space, which HTTP drops: trim it");
  }
  return Status::Ok();
}

}  // namespace

bool ValidUserMetaName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  bool chars = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  return chars && std::find(kCSharpKeywords.begin(), kCSharpKeywords.end(), name) == kCSharpKeywords.end();
}

bool ObjectMeta::empty() const {
  for (const auto& f : kContentFields) {
    if (!(this->*f.member).empty()) return false;
  }
  return user.empty();
}

void to_json(nlohmann::json& j, const ObjectMeta& meta) {
  j = nlohmann::json::object();
  for (const auto& f : kContentFields) {
    const std::string& value = meta.*f.member;
    if (!value.empty()) j[std::string(f.name)] = value;
  }
  if (!meta.user.empty()) j["user"] = meta.user;
}

void from_json(const nlohmann::json& j, ObjectMeta& meta) {
  meta = ObjectMeta{};
  for (const auto& f : kContentFields) meta.*f.member = j.value(std::string(f.name), std::string());
  meta.user = j.value("user", std::map<std::string, std::string>{});
}

std::vector<std::pair<std::string, std::string>> MetaHeaders(const ObjectMeta& meta,
                                                             std::string_view ContentField::*header_of,
                                                             std::string_view user_prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : kContentFields) {
    std::string value = meta.*f.member;
    if (f.member == &ObjectMeta::content_type && value.empty()) value = kDefaultContentType;
    if (!value.empty()) out.emplace_back(std::string(f.*header_of), std::move(value));
  }
  for (const auto& [name, value] : meta.user) out.emplace_back(std::string(user_prefix) + name, value);
  return out;
}

std::ostream& operator<<(std::ostream& os, const ObjectMeta& meta) { return os << nlohmann::json(meta).dump(); }

Status ObjectMeta::Validate() const {
  for (const auto& f : kContentFields) {
    const std::string& value = this->*f.member;
    if (!value.empty()) SHOAL_RETURN_IF_ERROR(CheckValue(f.header, value));
  }
  size_t bytes = 0;
  for (const auto& [name, value] : user) {
    if (!ValidUserMetaName(name)) {
      return Status::InvalidArgument(
          "metadata name '" + name +
          "' cannot be held by both Azure and S3: use lower-case letters, digits and '_', "
          "not starting with a digit and not a C# keyword (Azure's rule)");
    }
    SHOAL_RETURN_IF_ERROR(CheckValue("metadata '" + name + "'", value));
    bytes += name.size() + value.size();
  }
  // A cache node adds its write stamp to every object it uploads: room is kept for it.
  const size_t room = user.count(std::string(kWriteStampMeta)) ? kMaxUserMetaBytes
                                                                : kMaxUserMetaBytes - kWriteStampMetaBytes;
  if (bytes > room) {
    return Status::InvalidArgument("user metadata takes " + std::to_string(bytes) +
                                   " bytes (names and values), more than the " + std::to_string(room) +
                                   " a cached write may hold (S3 holds " + std::to_string(kMaxUserMetaBytes) +
                                   ", and the node's stamp takes " + std::to_string(kWriteStampMetaBytes) + ")");
  }
  return Status::Ok();
}

}  // namespace shoal

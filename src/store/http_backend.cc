#include "store/http_backend.h"

#include <pugixml.hpp>

#include "common/strings.h"

namespace shoal {

Result<uint64_t> XmlNumber(const pugi::xml_node& node, const char* field, const std::string& what) {
  auto n = ParseU64(node.child_value(field));
  if (!n.ok()) return Status::IOError(what + " " + field + " is '" + node.child_value(field) + "', not a number");
  return *n;
}

std::string DescribeXmlError(const http::Response& resp, const std::string& code_header) {
  std::string code = code_header.empty() ? "" : resp.Header(code_header);
  std::string message;
  pugi::xml_document doc;
  if (!resp.body.empty() && doc.load_buffer(resp.body.data(), resp.body.size())) {
    pugi::xml_node err = doc.child("Error");
    if (err) {
      if (code.empty()) code = err.child_value("Code");
      message = err.child_value("Message");
      // Azure says why a credential failed here ("Lifetime validation failed. The token is
      // expired."); the message's first line is what ErrorDetail keeps.
      std::string why = err.child_value("AuthenticationErrorDetail");
      if (!why.empty()) message = message.substr(0, message.find('\n')) + " " + why;
    }
  }
  return http::ErrorDetail(code, message);
}

std::shared_ptr<const ObjectMeta> MetaFromHeaders(const http::Response& resp, std::string_view user_prefix) {
  auto meta = std::make_shared<ObjectMeta>();
  for (const auto& f : kContentFields) (*meta).*f.member = resp.Header(f.header);
  if (meta->content_type.empty()) meta->content_type = kDefaultContentType;
  for (const auto& [name, value] : resp.headers) {  // names are lower-case already
    if (StartsWith(name, user_prefix)) meta->user[name.substr(user_prefix.size())] = value;
  }
  return meta;
}

ObjectInfo InfoOfAnswer(const std::string& key, const http::Answered& answered, std::string_view user_prefix) {
  if (answered.etag.empty()) return ObjectInfo{key, ReadOptions::kAnySize, "", 0};
  http::Response resp;
  resp.headers = answered.headers;
  return ObjectInfo{key, answered.total, answered.etag, ParseHttpTime(resp.Header("last-modified")),
                    MetaFromHeaders(resp, user_prefix)};
}

}  // namespace shoal

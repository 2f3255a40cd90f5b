#include "store/http_backend.h"

#include <pugixml.hpp>

namespace shoal {

std::string DescribeXmlError(const http::Response& resp, const std::string& code_header) {
  std::string code = code_header.empty() ? "" : resp.Header(code_header);
  std::string message;
  pugi::xml_document doc;
  if (!resp.body.empty() && doc.load_buffer(resp.body.data(), resp.body.size())) {
    pugi::xml_node err = doc.child("Error");
    if (err) {
      if (code.empty()) code = err.child_value("Code");
      message = err.child_value("Message");
    }
  }
  return http::ErrorDetail(code, message);
}

}  // namespace shoal

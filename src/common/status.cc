#include "common/status.h"

namespace shoal {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kPreconditionFailed: return "PreconditionFailed";
    case Code::kUnavailable: return "Unavailable";
    case Code::kCorruption: return "Corruption";
    case Code::kIOError: return "IOError";
    case Code::kResourceExhausted: return "ResourceExhausted";
    case Code::kAlreadyExists: return "AlreadyExists";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_).WithDetail(detail_);
}

}  // namespace shoal

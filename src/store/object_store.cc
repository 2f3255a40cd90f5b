#include "store/object_store.h"

#include "common/strings.h"
#include "store/azure/azure_store.h"
#include "store/local/local_store.h"
#include "store/s3/s3_store.h"

namespace shoal {

bool ObjectUrl::IsUrl(std::string_view text) {
  return StartsWith(text, "az://") || StartsWith(text, "s3://") || StartsWith(text, "file://");
}

Result<ObjectUrl> ObjectUrl::Parse(std::string_view url) {
  ObjectUrl out;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Status::InvalidArgument("'" + std::string(url) +
                                   "' is not a URL: use az://container/key, s3://bucket/key "
                                   "or file:///dir/key");
  }
  out.scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  if (out.scheme == "file") {
    if (!StartsWith(rest, "/")) {
      return Status::InvalidArgument("'" + std::string(url) +
                                     "': a file URL needs an absolute path, like file:///data/x");
    }
    out.key = std::string(rest.substr(1));
    return out;
  }
  if (out.scheme != "az" && out.scheme != "s3") {
    return Status::InvalidArgument("'" + std::string(url) + "': unknown scheme '" + out.scheme +
                                   "': use az://, s3:// or file://");
  }
  size_t slash = rest.find('/');
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.key = std::string(rest.substr(slash + 1));
  if (out.bucket.empty() || out.bucket.front() == '@') {
    return Status::InvalidArgument("'" + std::string(url) + "' names no " +
                                   (out.scheme == "az" ? "container" : "bucket"));
  }
  size_t at = out.bucket.find('@');
  if (at != std::string::npos) {
    if (out.scheme != "az") {
      return Status::InvalidArgument("'" + std::string(url) +
                                     "': only Azure URLs name an account (az://container@ACCOUNT/key)");
    }
    std::string account = out.bucket.substr(at + 1);
    bool valid = !account.empty() && account.size() <= 63;
    for (char c : account) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (!valid) {
      return Status::InvalidArgument("'" + std::string(url) + "': the account '" + account +
                                     "' must be 1-63 lowercase letters, digits or '-' "
                                     "(az://container@ACCOUNT/key)");
    }
  }
  return out;
}

std::string ObjectUrl::container() const { return bucket.substr(0, bucket.find('@')); }

std::string ObjectUrl::account() const {
  size_t at = bucket.find('@');
  return at == std::string::npos ? "" : bucket.substr(at + 1);
}

std::string ObjectUrl::AccountLabel() const {
  std::string a = account();
  return a.empty() ? scheme : scheme + "@" + a;
}

std::string ObjectUrl::ToString() const {
  if (scheme == "file") return "file:///" + key;
  return scheme + "://" + bucket + (key.empty() ? "" : "/" + key);
}

Status ObjectStore::ValidateKey(const std::string& key) const {
  if (key.empty()) return Status::InvalidArgument(Describe() + ": the object key is empty");
  if (key.find('\0') != std::string::npos) {
    return Status::InvalidArgument(Describe() + ": the object key contains a NUL byte");
  }
  // HTTP clients and servers resolve "." and ".." in a path, so such a key would name another
  // object than the one checked (a scope for a/ would reach a/../b).
  for (size_t start = 0; start <= key.size();) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string_view seg(key.data() + start, end - start);
    if (seg == "." || seg == "..") {
      return Status::InvalidArgument(Describe() + ": the object key '" + key +
                                     "' has a '" + std::string(seg) + "' segment, which paths resolve away: rename it");
    }
    start = end + 1;
  }
  return Status::Ok();
}

namespace {
// The cache node's stamp, metadata the store keeps with the object, as ObjectInfo::write_stamp.
void TakeWriteStamp(ObjectInfo* info) {
  if (!info->meta) return;
  auto it = info->meta->user.find(std::string(kWriteStampMeta));
  if (it == info->meta->user.end()) return;
  info->write_stamp = it->second;
  auto meta = std::make_shared<ObjectMeta>(*info->meta);
  meta->user.erase(std::string(kWriteStampMeta));
  info->meta = std::move(meta);
}
}  // namespace

Status ObjectStore::Get(const std::string& key, const ReadOptions& opts, const ByteSink& sink) {
  SHOAL_RETURN_IF_ERROR(ValidateKey(key));
  if (opts.length == 0) return Status::Ok();
  SHOAL_RETURN_IF_ERROR(GetImpl(key, opts, sink));
  if (opts.answered != nullptr) TakeWriteStamp(opts.answered);
  return Status::Ok();
}

Result<ObjectInfo> ObjectStore::Head(const std::string& key) {
  SHOAL_RETURN_IF_ERROR(ValidateKey(key));
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, HeadImpl(key));
  TakeWriteStamp(&info);
  return info;
}

Result<ObjectInfo> ObjectStore::HeadToRead(const std::string& key) {
  SHOAL_RETURN_IF_ERROR(ValidateKey(key));
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, HeadToReadImpl(key));
  TakeWriteStamp(&info);
  return info;
}

Result<ListPage> ObjectStore::List(const ListOptions& opts) {
  if (opts.prefix.find('\0') != std::string::npos) {
    return Status::InvalidArgument(Describe() + ": the prefix contains a NUL byte");
  }
  if (opts.max_keys == 0) return Status::InvalidArgument("List: max_keys must be at least 1");
  return ListImpl(opts);
}

Status ObjectStore::Delete(const std::string& key) {
  SHOAL_RETURN_IF_ERROR(ValidateKey(key));
  return DeleteImpl(key);
}

Status ObjectStore::ValidateWrite(const std::string& key, const ObjectMeta& meta) const {
  SHOAL_RETURN_IF_ERROR(ValidateKey(key));
  Status st = meta.Validate();
  if (!st.ok()) return Status::InvalidArgument(Describe() + "/" + key + ": " + st.message());
  return Status::Ok();
}

Result<ObjectInfo> ObjectStore::PutObject(const std::string& key, std::string_view data,
                                          const ObjectMeta& meta, const WriteCondition& only_if) {
  SHOAL_RETURN_IF_ERROR(ValidateWrite(key, meta));
  return PutObjectImpl(key, data, meta, only_if);
}

Result<std::unique_ptr<MultipartUpload>> ObjectStore::BeginUpload(const std::string& key,
                                                                  const ObjectMeta& meta) {
  SHOAL_RETURN_IF_ERROR(ValidateWrite(key, meta));
  return BeginUploadImpl(key, meta);
}

Result<std::unique_ptr<MultipartUpload>> ObjectStore::ResumeUpload(const std::string& key, const std::string& id,
                                                                  const ObjectMeta& meta) {
  SHOAL_RETURN_IF_ERROR(ValidateWrite(key, meta));
  if (id.empty()) return Status::NotFound("no upload of " + key + " to resume");
  return ResumeUploadImpl(key, id, meta);
}

Result<std::unique_ptr<MultipartUpload>> ObjectStore::ResumeUploadImpl(const std::string& key, const std::string&,
                                                                      const ObjectMeta&) {
  return Status::NotFound(Describe() + " cannot resume an upload of " + key + ": begin a new one");
}

Status ObjectStore::CreateBucket() { return CreateBucketImpl(); }

Result<std::shared_ptr<ObjectStore>> OpenObjectStore(const ObjectUrl& url) {
  if (url.scheme == "file") return NewLocalStore("/");
  if (url.scheme == "az") {
    std::string account = url.account();
    SHOAL_ASSIGN_OR_RETURN(AzureConfig config,
                           account.empty() ? AzureConfig::FromEnvironment() : AzureConfig::ForAccount(account));
    return NewAzureStore(config, url.container(), account);
  }
  if (url.scheme == "s3") {
    SHOAL_ASSIGN_OR_RETURN(S3Config config, S3Config::FromEnvironment());
    return NewS3Store(config, url.bucket);
  }
  return Status::InvalidArgument("unknown scheme '" + url.scheme + "'");
}

Result<std::vector<ObjectInfo>> ListAll(ObjectStore& store, const std::string& prefix) {
  std::vector<ObjectInfo> all;
  ListOptions lo;
  lo.prefix = prefix;
  while (true) {
    SHOAL_ASSIGN_OR_RETURN(ListPage page, store.List(lo));
    for (auto& o : page.objects) all.push_back(std::move(o));
    if (page.next_continuation.empty()) return all;
    lo.continuation = page.next_continuation;
  }
}

}  // namespace shoal

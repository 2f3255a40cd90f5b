#include "node/door_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sstream>

#include "common/strings.h"
#include "node/request_parse.h"

namespace shoal::node {
namespace {

constexpr size_t kBodySlice = 1 << 20;  // raw body bytes read and handed on at a time

std::string ClientIp(Socket& socket) {
  beast::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "";
  char buf[INET6_ADDRSTRLEN] = {0};
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(ep.data());
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  } else {
    return "127.0.0.1";  // a Unix socket: this host
  }
  return buf;
}

// An HTTP date (RFC 7231's IMF-fixdate); nullopt for anything else.
std::optional<std::time_t> ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return timegm(&tm);
}

}  // namespace

door::RequestView ViewOf(Exchange& x, const Request& req) {
  door::RequestView view;
  std::string_view target(req.target().data(), req.target().size());
  size_t q = target.find('?');
  view.method = std::string(req.method_string());
  view.raw_path = std::string(target.substr(0, q));
  view.raw_query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  for (const auto& f : req) view.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  view.client_ip = ClientIp(x.conn().socket);
  view.is_tls = x.conn().stream.tls() != nullptr;  // a SAS with spr=https needs it
  return view;
}

pugi::xml_node XmlRoot(pugi::xml_document& doc, const char* name, const char* encoding) {
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = encoding;
  return doc.append_child(name);
}

void XmlAdd(pugi::xml_node parent, const char* name, const std::string& value) {
  parent.append_child(name).text().set(value.c_str());
}

std::string XmlText(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw, pugi::encoding_utf8);
  return out.str();
}

awaitable<bool> ReadRawBody(Exchange& x, Parser& parser, const std::function<Status(std::string_view)>& take,
                            Status* st) {
  std::string buf(kBodySlice, '\0');
  auto slice = [&](uint64_t n) -> awaitable<bool> {  // n bytes of body, in slices
    while (n > 0 && st->ok()) {
      size_t got = 0;
      if (!co_await x.ReadSome(buf.data(), std::min<uint64_t>(n, buf.size()), &got)) co_return false;
      n -= got;
      std::string_view data(buf.data(), got);
      auto job = x.Offload([&take, data] { return take(data); });
      *st = co_await std::move(job);
    }
    co_return true;
  };
  if (!parser.get().chunked()) co_return co_await slice(parser.content_length().value_or(0));
  std::string line;
  while (st->ok()) {
    if (!co_await x.ReadChunkLine(&line, st)) co_return false;
    if (!st->ok()) break;
    auto size = ParseChunkSize(line);
    if (!size.ok()) {
      *st = size.status();
      break;
    }
    if (*size == 0) {
      do {
        if (!co_await x.ReadChunkLine(&line, st)) co_return false;
      } while (st->ok() && !line.empty());
      break;
    }
    if (!co_await slice(*size)) co_return false;
    if (!st->ok()) break;
    if (!co_await x.ReadChunkLine(&line, st)) co_return false;
    if (st->ok() && !line.empty()) *st = Status::InvalidArgument("malformed chunked body");
  }
  co_return true;
}

awaitable<bool> SendDoorObject(Exchange& x, const std::string& url, const ObjectInfo& info, uint64_t offset,
                               uint64_t length, bool head, bool keep_alive, http::response<http::empty_body>& res,
                               const std::function<TextResponse(const Status&)>& error) {
  if (res.result() == http::status::partial_content) {
    res.set(http::field::content_range, "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) +
                                            "/" + std::to_string(info.size));
  }
  res.content_length(length);
  if (head) co_return co_await x.WriteHeader(res) && keep_alive;
  ObjectSend send{url, info, offset, length, ReadMode::kRoute, false, false,
                  [](const ObjectInfo& at, http::response<http::empty_body>& r) {
                    r.set(http::field::etag, "\"" + at.etag + "\"");
                  }};
  Status st;
  bool header_sent = false, fetched = false;
  if (!co_await SendObject(x, send, res, &st, &header_sent, &fetched)) co_return false;
  if (!st.ok()) {
    if (!header_sent) co_return co_await x.Write(error(st));
    CountError(x.node, st);
    co_return false;
  }
  co_return keep_alive;
}

Precondition CheckPreconditions(const Request& req, const std::string& etag, std::time_t modified,
                                const std::string& same_as, std::string_view prefix) {
  auto cond = [&](std::string_view name) { return std::string(Header(req, std::string(prefix) + std::string(name))); };
  auto etag_in = [&](const std::string& list) {
    if (list == "*") return true;
    std::stringstream items(list);
    for (std::string t; std::getline(items, t, ',');) {
      while (!t.empty() && t.front() == ' ') t.erase(0, 1);
      while (!t.empty() && t.back() == ' ') t.pop_back();
      if (StartsWith(t, "W/")) t = t.substr(2);
      t = Unquote(t);
      if (t == etag || (!same_as.empty() && t == same_as)) return true;
    }
    return false;
  };
  std::string if_match = cond("If-Match"), if_none = cond("If-None-Match");
  auto since = ParseHttpDate(cond("If-Modified-Since")), unmodified = ParseHttpDate(cond("If-Unmodified-Since"));
  if (!if_match.empty() ? !etag_in(if_match) : (unmodified && modified > *unmodified)) return Precondition::kFailed;
  bool not_modified = false;
  if (!if_none.empty()) {
    not_modified = etag_in(if_none);
  } else if (since) {
    not_modified = modified <= *since;
  }
  return not_modified ? Precondition::kNotModified : Precondition::kProceed;
}

Precondition CheckObjectPreconditions(Node* node, const Request& req, const std::string& url, const ObjectInfo& info,
                                      std::time_t modified, std::string_view prefix) {
  const std::string local = node->objects().ChunkVersion(url, info.etag);  // the same bytes' name before the upload
  return CheckPreconditions(req, info.etag, modified, local == info.etag ? "" : local, prefix);
}

}  // namespace shoal::node

#pragma once

// What the door's two APIs (door_s3.cc: S3; door_azure.cc: Azure Blob) share on the wire: the
// request as the verifiers read it, a raw body read in slices, the conditions of a read
// (If-Match and the rest), dates and XML text. Plain functions; each works on one connection's
// request (on its strand, except where it says it runs a callback on the serve pool).

#include <ctime>
#include <functional>
#include <optional>
#include <pugixml.hpp>
#include <string>
#include <string_view>

#include "door/request.h"
#include "node/door.h"
#include "node/exchange.h"

namespace shoal::node {

// The request's method, raw path and query, headers and client address, for door/'s verifiers
// (filled before the body is read).
door::RequestView ViewOf(Exchange& x, const Request& req);

// What every door request starts from, whatever its API (S3Call and AzureCall add their own):
// the connection, the request as received and as the verifiers read it, its decoded query.
struct DoorCall {
  DoorCall(Exchange& ex, Parser& p, const Door& d)
      : x(ex), parser(p), door(d), req(p.get()), v(req.version()), ka(req.keep_alive()),
        head(req.method() == http::verb::head), view(ViewOf(ex, req)), query(door::ParseQuery(view.raw_query)) {}

  Exchange& x;
  Parser& parser;
  const Door& door;
  const Request& req;
  unsigned v;
  bool ka;
  bool head;
  door::RequestView view;
  std::vector<door::QueryParam> query;

  bool Has(std::string_view name) const { return door::QueryValue(query, name).has_value(); }
  std::string Q(std::string_view name) const { return door::QueryValue(query, name).value_or(""); }
};

// A document's declaration (version 1.0, `encoding` as written: "UTF-8" for S3, "utf-8" for
// Azure) and its root element `name`.
pugi::xml_node XmlRoot(pugi::xml_document& doc, const char* name, const char* encoding);
// <name>value</name> under `parent`.
void XmlAdd(pugi::xml_node parent, const char* name, const std::string& value);
// The document as compact UTF-8 text.
std::string XmlText(const pugi::xml_document& doc);

// Reads the raw body (Content-Length or HTTP chunked) a slice at a time (at most 1 MiB) and
// hands each to `take` on the serve pool. False if the connection failed; *st the first error
// of `take` or of the framing (the rest of the body is then not read).
awaitable<bool> ReadRawBody(Exchange& x, Parser& parser, const std::function<Status(std::string_view)>& take,
                            Status* st);

// Answers a GET or HEAD of bytes [offset, offset + length) of version `info` of `url`: `res`
// (its status and headers set by the caller; Content-Length, and Content-Range for a 206, set
// here), then the bytes through the read path (SendObject), which may switch to a newer version
// of the same size before the header goes out (its ETag then). A failure before the header
// went out is answered with `error(status)`; after it, the connection closes. False if the
// connection must close.
awaitable<bool> SendDoorObject(Exchange& x, const std::string& url, const ObjectInfo& info, uint64_t offset,
                               uint64_t length, bool head, bool keep_alive, http::response<http::empty_body>& res,
                               const std::function<TextResponse(const Status&)>& error);

// What the conditions of a GET or HEAD (If-Match, If-None-Match, If-Modified-Since,
// If-Unmodified-Since; RFC 9110 13.2.2's order) say of the version `etag` (unquoted) last
// modified at `modified`. `same_as`, when not empty, is another name of the same bytes: the
// local version a write through this node was answered with, which the store's ETag replaces
// once it is uploaded (ObjectCatalog::ChunkVersion), so a client that read the blob before the
// upload (the Azure SDKs send If-Match on every range after the first) still matches it.
// `prefix` names the headers another way: "x-amz-copy-source-" for a copy's source conditions
// (x-amz-copy-source-if-match...), where a kNotModified means 412 too.
enum class Precondition { kProceed, kFailed /* 412 */, kNotModified /* 304 */ };
Precondition CheckPreconditions(const Request& req, const std::string& etag, std::time_t modified,
                                const std::string& same_as = "", std::string_view prefix = "");
// CheckPreconditions of version `info` of `url`, modified at `modified`, whose other name is
// the local version this node answered a write of it with (if it has one).
Precondition CheckObjectPreconditions(Node* node, const Request& req, const std::string& url, const ObjectInfo& info,
                                      std::time_t modified, std::string_view prefix = "");

}  // namespace shoal::node

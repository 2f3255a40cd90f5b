#include "door/azure_blocks.h"

#include <cstring>
#include <pugixml.hpp>

#include "common/strings.h"

namespace shoal::door {

BlockListResult ParseBlockList(std::string_view xml) {
  BlockListResult out;
  auto fail = [&out](const char* code, std::string message) {
    out.entries.clear();
    out.error_code = code;
    out.message = std::move(message);
    return out;
  };
  pugi::xml_document doc;
  auto parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) return fail("InvalidXmlDocument", std::string("the block list is not XML: ") + parsed.description());
  auto root = doc.document_element();
  if (std::strcmp(root.name(), "BlockList") != 0) {
    return fail("InvalidXmlDocument", "the block list's root element is <" + std::string(root.name()) + ">, not <BlockList>");
  }
  for (auto e : root.children()) {
    if (e.type() != pugi::node_element) continue;  // comments, whitespace
    const std::string name = e.name();
    BlockListKind kind;
    if (name == "Latest") {
      kind = BlockListKind::kLatest;
    } else if (name == "Committed") {
      kind = BlockListKind::kCommitted;
    } else if (name == "Uncommitted") {
      kind = BlockListKind::kUncommitted;
    } else {
      return fail("InvalidXmlDocument", "<" + name + "> is not Latest, Committed or Uncommitted");
    }
    if (e.find_child([](pugi::xml_node c) { return c.type() == pugi::node_element; })) {
      return fail("InvalidXmlDocument", "<" + name + "> holds elements; it holds a block id");
    }
    std::string text = Trim(e.text().as_string());
    auto id = Base64Decode(text);
    if (!id.ok() || id->empty() || id->size() > 64) {
      return fail("InvalidBlockId", "<" + name + ">" + text.substr(0, 100) + "</" + name +
                                        "> is not a block id (base64 of 1 to 64 bytes)");
    }
    if (out.entries.size() == kMaxBlockListEntries) {
      return fail("InvalidBlockList", "a block list names at most " + std::to_string(kMaxBlockListEntries) + " blocks");
    }
    out.entries.push_back({kind, std::move(*id)});
  }
  return out;
}

}  // namespace shoal::door

#pragma once

// The body of Azure Blob's Put Block List, parsed as Azure Storage reads it:
//
//   <?xml version="1.0" encoding="utf-8"?>
//   <BlockList>
//     <Committed>BASE64-ID</Committed>      a block of the blob as committed now
//     <Uncommitted>BASE64-ID</Uncommitted>  a block staged and not committed
//     <Latest>BASE64-ID</Latest>            the staged block if there is one, else the committed
//   </BlockList>
//
// in the order given (the blob's order; an id may come more than once). Pure parsing: nothing
// here knows what is staged. Thread-safe (no shared state).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::door {

enum class BlockListKind : uint8_t { kCommitted, kUncommitted, kLatest };

struct BlockListEntry {
  BlockListKind kind;
  std::string id;  // base64-decoded: 1 to 64 bytes
  bool operator==(const BlockListEntry&) const = default;
};

// At most this many entries (Azure's limit of committed blocks).
inline constexpr size_t kMaxBlockListEntries = 50000;

struct BlockListResult {
  std::vector<BlockListEntry> entries;
  // Empty when the body parsed; else Azure's code for it ("InvalidXmlDocument": not XML or not
  // a <BlockList>, an element other than the three, an element with children;
  // "InvalidBlockId": an id that is not base64 or not 1 to 64 bytes; "InvalidBlockList": more
  // than kMaxBlockListEntries) and what is wrong, naming the element.
  std::string error_code;
  std::string message;
};

BlockListResult ParseBlockList(std::string_view xml);

}  // namespace shoal::door

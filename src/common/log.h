#pragma once

#include <string>
#include <string_view>

namespace shoal {

// The daemon's log: one line per event on stderr, each with a UTC timestamp (milliseconds) and
// a level, as text or as JSON for a log pipeline:
//   text: 2026-12-03T19:10:00.123Z warn  shoald: upload of az://c/k failed ...
//   json: {"ts":"2026-12-03T19:10:00.123Z","level":"warn","component":"shoald","msg":"upload of ..."}
// A message never spans lines: a newline in it is written as "\n" (text) or escaped (JSON).
// Each line goes out in one write(2), so lines of concurrent threads never interleave.
// Thread-safe; the format may be changed at any time (SIGHUP), and applies from the next line.
enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();
// "text" or "json"; false for anything else.
bool ParseLogFormat(std::string_view text, LogFormat* format);
const char* LogLevelName(LogLevel level);

// Writes one event of `component` ("shoald", "etcd", ...).
void LogEvent(LogLevel level, std::string_view component, std::string_view message);
// printf-style, component "shoald".
void Logf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// The line LogEvent would write at `unix_ms` (for tests), without the final newline.
std::string FormatLogLine(LogFormat format, int64_t unix_ms, LogLevel level, std::string_view component,
                          std::string_view message);

}  // namespace shoal

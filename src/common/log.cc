#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <vector>

#include "common/strings.h"

namespace shoal {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

std::string Timestamp(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

// JSON string contents (without the quotes).
std::string JsonEscaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof(esc), "\\u%04x", c);
          out += esc;
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format = format; }
LogFormat GetLogFormat() { return g_format; }

bool ParseLogFormat(std::string_view text, LogFormat* format) {
  if (text == "text") *format = LogFormat::kText;
  else if (text == "json") *format = LogFormat::kJson;
  else return false;
  return true;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

std::string FormatLogLine(LogFormat format, int64_t unix_ms, LogLevel level, std::string_view component,
                          std::string_view message) {
  if (format == LogFormat::kJson) {
    return "{\"ts\":\"" + Timestamp(unix_ms) + "\",\"level\":\"" + LogLevelName(level) + "\",\"component\":\"" +
           JsonEscaped(component) + "\",\"msg\":\"" + JsonEscaped(message) + "\"}";
  }
  std::string line = Timestamp(unix_ms) + " ";
  line += LogLevelName(level);
  line.append(6 - std::string_view(LogLevelName(level)).size(), ' ');
  line.append(component);
  line += ": ";
  for (char c : message) {
    if (c == '\n') line += "\\n";
    else line += c;
  }
  return line;
}

void LogEvent(LogLevel level, std::string_view component, std::string_view message) {
  std::string line = FormatLogLine(g_format, UnixMillis(), level, component, message) + "\n";
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) return;  // nowhere to log to; nothing better to do
    done += static_cast<size_t>(n);
  }
}

void Logf(LogLevel level, const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::vector<char> buf(n > 0 ? static_cast<size_t>(n) + 1 : 1);
  std::vsnprintf(buf.data(), buf.size(), format, args);
  va_end(args);
  std::string message(buf.data());
  while (!message.empty() && message.back() == '\n') message.pop_back();
  LogEvent(level, "shoald", message);
}

}  // namespace shoal

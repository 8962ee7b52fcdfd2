// Logging: levels, an instance-name prefix, stderr by default.
// A message repeated back to back by the same logger is printed once and then
// summarised ("... repeated 57 times"), so a broken device cannot fill the log.
#pragma once

#include "moat/export.hpp"

#include <chrono>
#include <fmt/format.h>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace moat {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3, off = 4 };

/// "debug", "info", "warning"/"warn", "error", "off"; nullopt when unknown.
MOAT_API std::optional<LogLevel> parse_log_level(std::string_view name);
MOAT_API std::string_view to_string(LogLevel level);

/// Where finished lines go. The default writes to stderr; tests capture.
class MOAT_API LogSink {
public:
    virtual ~LogSink() = default;
    virtual void write(LogLevel level, std::string_view line) = 0;

    LogLevel level = LogLevel::info;
    bool timestamps = false;
};

/// The process-wide stderr sink (shared by the host and every plugin logger).
MOAT_API std::shared_ptr<LogSink> stderr_sink();
/// A sink that drops everything (tests, quiet tools).
MOAT_API std::shared_ptr<LogSink> null_sink();

/// A named logger. Cheap to copy; copies share the repeat counter.
class MOAT_API Logger {
public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;

    explicit Logger(std::string name, std::shared_ptr<LogSink> sink = stderr_sink());

    /// A logger for a sub-part: "name/sub".
    Logger child(std::string_view sub) const;
    const std::string& name() const;
    bool enabled(LogLevel level) const;

    template <class... A> void debug(fmt::format_string<A...> f, A&&... a) { log(LogLevel::debug, f, std::forward<A>(a)...); }
    template <class... A> void info(fmt::format_string<A...> f, A&&... a) { log(LogLevel::info, f, std::forward<A>(a)...); }
    template <class... A> void warning(fmt::format_string<A...> f, A&&... a) { log(LogLevel::warning, f, std::forward<A>(a)...); }
    template <class... A> void error(fmt::format_string<A...> f, A&&... a) { log(LogLevel::error, f, std::forward<A>(a)...); }

    template <class... A> void log(LogLevel level, fmt::format_string<A...> f, A&&... a) {
        if (enabled(level)) write(level, fmt::format(f, std::forward<A>(a)...));
    }
    void write(LogLevel level, std::string_view message);
    /// Print a pending "... repeated N times" summary now.
    void flush();
    /// For tests: replace the time source used for the summary interval.
    void set_clock(Clock clock);

    /// How long identical messages are held back before a summary is printed.
    static constexpr std::chrono::seconds summary_interval{60};

private:
    struct State;
    std::shared_ptr<State> state_;
};

} // namespace moat

#include "moat/log.hpp"

#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace moat {

std::optional<LogLevel> parse_log_level(std::string_view name) {
    if (name == "debug") return LogLevel::debug;
    if (name == "info") return LogLevel::info;
    if (name == "warning" || name == "warn") return LogLevel::warning;
    if (name == "error") return LogLevel::error;
    if (name == "off") return LogLevel::off;
    return std::nullopt;
}

std::string_view to_string(LogLevel level) {
    switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
    }
    return "?";
}

namespace {

class StderrSink final : public LogSink {
public:
    void write(LogLevel, std::string_view line) override {
        std::string out;
        if (timestamps) {
            timespec ts{};
            clock_gettime(CLOCK_REALTIME, &ts);
            tm t{};
            localtime_r(&ts.tv_sec, &t);
            char buf[40];
            std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &t);
            out = fmt::format("{}.{:03d} ", buf, int(ts.tv_nsec / 1000000));
        }
        out.append(line);
        out.push_back('\n');
        // One write(2) per line keeps lines whole when several processes share stderr.
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
    }
};

constexpr std::string_view level_tag(LogLevel level) {
    switch (level) {
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warning: return "WARNING";
    case LogLevel::error: return "ERROR";
    case LogLevel::off: break;
    }
    return "";
}

} // namespace

std::shared_ptr<LogSink> stderr_sink() {
    static auto sink = std::make_shared<StderrSink>();
    return sink;
}

std::shared_ptr<LogSink> null_sink() {
    struct Null final : LogSink {
        void write(LogLevel, std::string_view) override {}
    };
    static auto sink = std::make_shared<Null>();
    return sink;
}

struct Logger::State {
    std::string name;
    std::shared_ptr<LogSink> sink;
    Clock clock = [] { return std::chrono::steady_clock::now(); };
    // The last message written and how often it came again since.
    std::string last;
    LogLevel last_level = LogLevel::info;
    unsigned repeats = 0;
    std::chrono::steady_clock::time_point first_repeat{};

    void emit(LogLevel level, std::string_view message) {
        sink->write(level, fmt::format("{} [{}] {}", level_tag(level), name, message));
    }
    void summarise() {
        if (repeats == 0) return;
        // One repeat is shorter said by the message itself than by a summary.
        emit(last_level, repeats == 1 ? last : fmt::format("... repeated {} times", repeats));
        repeats = 0;
    }
};

Logger::Logger(std::string name, std::shared_ptr<LogSink> sink) : state_(std::make_shared<State>()) {
    state_->name = std::move(name);
    state_->sink = std::move(sink);
}

Logger Logger::child(std::string_view sub) const {
    Logger l(fmt::format("{}/{}", state_->name, sub), state_->sink);
    l.state_->clock = state_->clock;
    return l;
}

const std::string& Logger::name() const { return state_->name; }

bool Logger::enabled(LogLevel level) const {
    return level != LogLevel::off && level >= state_->sink->level;
}

void Logger::write(LogLevel level, std::string_view message) {
    auto& s = *state_;
    if (message == s.last && level == s.last_level) {
        auto now = s.clock();
        if (s.repeats++ == 0) s.first_repeat = now;
        // A message that keeps coming is summarised once per interval, so the
        // log shows it is still happening without repeating it every time.
        if (now - s.first_repeat >= summary_interval) s.summarise();
        return;
    }
    s.summarise();
    s.last.assign(message);
    s.last_level = level;
    s.emit(level, message);
}

void Logger::flush() { state_->summarise(); }

void Logger::set_clock(Clock clock) { state_->clock = std::move(clock); }

} // namespace moat

// A small JSON reader for the conformance catalogue: keeps integers apart from
// numbers with a fraction or exponent (the catalogue's 25.0 is a double) and
// objects in file order.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conformance {

struct Json {
    enum class Type { null, boolean, integer, number, string, array, object };
    Type type = Type::null;
    bool b = false;
    std::int64_t i = 0;
    double d = 0;
    std::string s;
    std::vector<Json> array;
    std::vector<std::pair<std::string, Json>> object;

    const Json* get(std::string_view key) const {
        for (const auto& [k, v] : object)
            if (k == key) return &v;
        return nullptr;
    }
    bool is_null() const { return type == Type::null; }
    double number() const {
        if (type == Type::integer) return static_cast<double>(i);
        if (type == Type::number) return d;
        throw std::runtime_error("JSON: a number was expected");
    }
};

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : t_(text) {}

    Json parse() {
        Json v = value();
        blank();
        if (p_ != t_.size()) fail("trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        std::size_t line = 1;
        for (std::size_t k = 0; k < p_ && k < t_.size(); ++k) line += t_[k] == '\n';
        throw std::runtime_error("JSON line " + std::to_string(line) + ": " + what);
    }
    void blank() {
        while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t')) ++p_;
    }
    bool take(char c) {
        blank();
        if (p_ < t_.size() && t_[p_] == c) {
            ++p_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!take(c)) fail(std::string("'") + c + "' expected");
    }
    bool word(std::string_view w) {
        if (t_.substr(p_, w.size()) == w) {
            p_ += w.size();
            return true;
        }
        return false;
    }

    Json value() {
        blank();
        if (p_ >= t_.size()) fail("unexpected end");
        Json v;
        char c = t_[p_];
        if (c == '{') {
            ++p_;
            v.type = Json::Type::object;
            if (take('}')) return v;
            do {
                blank();
                std::string key = string();
                expect(':');
                Json item = value();
                v.object.emplace_back(std::move(key), std::move(item));
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            ++p_;
            v.type = Json::Type::array;
            if (take(']')) return v;
            do {
                Json item = value();
                v.array.push_back(std::move(item));
            } while (take(','));
            expect(']');
        } else if (c == '"') {
            v.type = Json::Type::string;
            v.s = string();
        } else if (word("true")) {
            v.type = Json::Type::boolean;
            v.b = true;
        } else if (word("false")) {
            v.type = Json::Type::boolean;
        } else if (word("null")) {
            v.type = Json::Type::null;
        } else {
            std::size_t start = p_;
            bool integral = true;
            while (p_ < t_.size() && std::string_view("+-0123456789.eE").find(t_[p_]) != std::string_view::npos) {
                if (t_[p_] == '.' || t_[p_] == 'e' || t_[p_] == 'E') integral = false;
                ++p_;
            }
            std::string num(t_.substr(start, p_ - start));
            if (num.empty()) fail("unexpected character");
            try {
                std::size_t used = 0;
                if (integral) {
                    v.type = Json::Type::integer;
                    v.i = std::stoll(num, &used);
                } else {
                    v.type = Json::Type::number;
                    v.d = std::stod(num, &used);
                }
                if (used != num.size()) fail("bad number " + num);
            } catch (const std::logic_error&) {
                fail("bad number " + num);
            }
        }
        return v;
    }

    std::string string() {
        if (p_ >= t_.size() || t_[p_] != '"') fail("string expected");
        ++p_;
        std::string out;
        while (p_ < t_.size() && t_[p_] != '"') {
            char c = t_[p_++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (p_ >= t_.size()) break;
            char e = t_[p_++];
            switch (e) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'u': {
                if (p_ + 4 > t_.size()) fail("bad \\u escape");
                unsigned cp = std::stoul(std::string(t_.substr(p_, 4)), nullptr, 16);
                p_ += 4;
                if (cp < 0x80) out += static_cast<char>(cp);
                else if (cp < 0x800) {
                    out += static_cast<char>(0xC0 | (cp >> 6));
                    out += static_cast<char>(0x80 | (cp & 0x3F));
                } else {
                    out += static_cast<char>(0xE0 | (cp >> 12));
                    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                    out += static_cast<char>(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: out += e;
            }
        }
        if (p_ >= t_.size()) fail("unterminated string");
        ++p_;
        return out;
    }

    std::string_view t_;
    std::size_t p_ = 0;
};

} // namespace conformance

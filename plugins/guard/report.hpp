// The checks as a table for people or as JSON for scripts (`moat-victron guard`).
#pragma once

#include <span>
#include <string>

#include <moat/value.hpp>

#include "checks.hpp"

namespace moat::guard {

/// One check as seen now.
struct CheckRow {
    const critical::Check* check = nullptr;
    std::string service;  ///< "" when no service plays the check's role
    critical::Reading reading;
    critical::Verdict verdict;
};

/// The worst state of all rows (ok for none).
critical::State worst(std::span<const CheckRow> rows);
/// 0 every check ok, 1 a warning or unknown, 2 a critical one.
int exit_code(std::span<const CheckRow> rows);

/// Aligned columns: check, state, value, expected, what it means; then a summary line.
std::string format_table(std::span<const CheckRow> rows);
/// {"worst": ..., "critical": n, "warning": n, "unknown": n, "checks": [{name, state, value, expected, text, service, path}]}
std::string format_json(std::span<const CheckRow> rows);
/// A value as JSON: numbers, booleans, strings; invalid as null; lists and dicts as text.
std::string json_value(const Value& v);

} // namespace moat::guard

// Identifying a meter (spec §7.2, §10): which registers to read, in which
// order, and what the answers mean. The Prober is a state machine without
// I/O: the caller sends next(), feeds back what came of it, and reads the
// result when done().
//
// Rules:
// - Steps run in the order of meter_types(); the first type whose table
//   holds the code read wins.
// - Within a step, the next access type (FC04 after FC03) is tried only
//   after an exception reply: the meter is there but refuses that read.
// - A reply whose code no candidate accepts, and a request that got no
//   reply at all (timeout, garbled frame), end the step; the next step
//   still runs, as each original driver probed on its own.
#pragma once

#include "meter_types.hpp"

namespace moat::meters {

/// One probe read and the types it can identify, in priority order. Types
/// that share a register and access list share a step (one read for all).
struct ProbeStep {
    std::uint16_t address;
    std::span<const Access> access;
    std::vector<const MeterType*> candidates;

    modbus::Request request(Access a) const { return modbus::Request::read(a, address, 1); }
};
/// The steps for all types, in probe order.
std::vector<ProbeStep> probe_plan();

/// What a probe found.
struct Identification {
    const MeterType* type;
    std::string_view model;
    bool operator==(const Identification&) const = default;
};
/// The first candidate of `step` that accepts `code`.
std::optional<Identification> identify(const ProbeStep& step, std::uint16_t code) noexcept;

class Prober {
public:
    Prober();

    /// The read to make now; nullopt once done().
    std::optional<modbus::Request> next() const;
    /// The outcome of next(): the reply (registers or an exception), or
    /// nullopt when none came. Throws std::logic_error when done().
    void feed(const std::optional<modbus::Response>& reply);

    bool done() const noexcept { return result_.has_value() || step_ >= steps_.size(); }
    /// The meter found; nullopt while running or when nothing matched.
    const std::optional<Identification>& result() const noexcept { return result_; }

private:
    std::vector<ProbeStep> steps_;
    std::size_t step_ = 0;
    std::size_t access_ = 0;
    std::optional<Identification> result_;
};

} // namespace moat::meters

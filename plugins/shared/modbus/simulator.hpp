// A simulated Modbus energy meter for the demo and the tests: the register
// image of any supported type (meter_types.hpp), filled from published
// values that follow a profile, with fault injection, served over Modbus TCP
// (loopback) or RTU on a pseudo-terminal. build/test/meter-sim wraps it as a
// program.
//
// The image is built from the same register tables the reader uses, but by
// an encoder of its own (the inverse of registers.hpp's decoder), so a
// reader that decodes what the simulator encoded checks both directions;
// the independent check is the pymodbus peer of the integration tests.
#pragma once

#include "meter_types.hpp"
#include "modbus.hpp"

#include <moat/io.hpp>
#include <moat/loop.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace moat::meters::sim {

using Bytes = std::vector<std::uint8_t>;

/// How the published values move. `constant`: the nominal values. `sine`:
/// phase powers and currents swing ±20 % over a minute. `external`: only
/// what set() puts there (the demo feeds the simulated system's powers).
enum class Profile { constant, sine, external };

/// Injected misbehaviour. An address limits it to requests that cover it.
struct Fault {
    enum class Kind { none, silent, crc, exception };
    Kind kind = Kind::none;
    std::uint8_t code = 4;  ///< exception code (default SERVER DEVICE FAILURE)
    std::optional<std::uint16_t> address;
};

/// The meter type named like the config key: "sdm630v2", "em24rtu", ...
std::optional<MeterKind> kind_from_name(std::string_view name) noexcept;
std::string_view kind_name(MeterKind kind) noexcept;

class SimMeter {
public:
    /// `serial`: digits for Eastron and ABB (a u32), up to 14 characters for the EM24.
    SimMeter(MeterKind kind, std::uint8_t unit, std::string serial = "12345678");

    const MeterType& type() const { return *type_; }
    std::uint8_t unit() const { return unit_; }
    const std::string& serial() const { return serial_; }
    unsigned phases() const { return phases_; }

    void set_profile(Profile p) { profile_ = p; }
    /// Pin a published value (overrides the profile for that path).
    void set(const std::string& path, double value);
    /// Move the profile to time `t` (seconds) and rewrite the registers.
    void update(double t);
    /// The published values the registers encode now, by path.
    const std::map<std::string, double>& values() const { return values_; }

    Fault fault;
    /// Requests served (answered or not).
    std::uint64_t requests = 0;

    /// The reply PDU; nullopt for silence.
    std::optional<Bytes> answer(const modbus::Request& request);

    /// Whether the fault applies to this request.
    bool affected(const modbus::Request& r) const;

    std::map<std::uint16_t, std::uint16_t> holding, input;

private:
    void nominal();
    void write_registers();

    const MeterType* type_;
    std::uint8_t unit_;
    std::string serial_;
    unsigned phases_ = 3;
    Profile profile_ = Profile::constant;
    std::map<std::string, double> base_, pinned_, values_;
    std::set<std::string> paths_;  ///< published by this type
};

/// The meters on one simulated bus, by unit.
class SimBus {
public:
    SimMeter& add(MeterKind kind, std::uint8_t unit, std::string serial = "12345678");
    SimMeter* find(std::uint8_t unit);
    std::vector<std::unique_ptr<SimMeter>>& meters() { return meters_; }
    void update(double t);

    /// The reply frame to an RTU request frame; nullopt for silence (other
    /// unit, broadcast, bad CRC, silent fault).
    std::optional<Bytes> serve_rtu(std::span<const std::uint8_t> frame);
    /// The same for one MBAP frame.
    std::optional<Bytes> serve_tcp(std::span<const std::uint8_t> frame);

private:
    std::vector<std::unique_ptr<SimMeter>> meters_;
};

/// Serves a SimBus over Modbus TCP on `host` (port 0: any free port).
class TcpServer {
public:
    TcpServer(Loop& loop, SimBus& bus, const std::string& host = "127.0.0.1", std::uint16_t port = 0);
    ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;
    std::uint16_t port() const { return port_; }
    /// Connections accepted so far.
    std::size_t accepted() const { return accepted_; }
    /// Close every client connection (the listener stays).
    void drop_clients();

private:
    struct Client {
        std::uint64_t id;
        TcpConnection conn;
        Bytes rx;
    };
    void on_data(Client& c);
    /// Forget a client whose connection ended (later: not from its own callback).
    void drop_later(std::uint64_t id);

    Loop& loop_;
    SimBus& bus_;
    TcpListener listener_;
    std::uint16_t port_ = 0;
    std::size_t accepted_ = 0;
    std::vector<std::unique_ptr<Client>> clients_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  ///< for work posted to the loop
};

/// Serves a SimBus as RTU slaves on the master side of a pseudo-terminal;
/// a reader opens slave_path() as its serial port.
class RtuServer {
public:
    RtuServer(Loop& loop, SimBus& bus);
    ~RtuServer();
    RtuServer(const RtuServer&) = delete;
    RtuServer& operator=(const RtuServer&) = delete;
    const std::string& slave_path() const { return slave_path_; }

private:
    void on_readable();
    Loop& loop_;
    SimBus& bus_;
    int master_ = -1, slave_ = -1;
    std::string slave_path_;
    FdWatch watch_;
    Bytes rx_;
    TimePoint last_byte_{};
};

} // namespace moat::meters::sim

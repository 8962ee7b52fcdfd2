// Cell-ring payloads and conversions: the worked examples byte for byte, the
// reply parser's error classes, invalid raws, and the conversion values.
#include "cell_packet.hpp"
#include "conversions.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat::bms::cell;
using moat::bms::test::hex;

TEST_CASE("the header encodes and decodes exactly")
{
    Header h{.start = 0, .command = 1, .cells = 15, .sequence = 3};
    const auto e = encode(h);
    CHECK(Bytes(e.begin(), e.end()) == hex("00 01 00 7B"));
    auto d = decode_header(hex("00 11 02 0B"));
    REQUIRE(d);
    CHECK(d->start == 0);
    CHECK(d->seen);
    CHECK_FALSE(d->broadcast);
    CHECK(d->command == 1);
    CHECK(d->hops == 2);
    CHECK(d->cells == 1);
    CHECK(d->sequence == 3);
    Header b{.start = 0, .broadcast = true, .command = 11, .cells = 31, .sequence = 4};
    const auto eb = encode(b);
    CHECK(Bytes(eb.begin(), eb.end()) == hex("00 2B 00 FC"));
    CHECK(decode_header(hex("00 2B 00")) == std::nullopt);
    // Reserved bits are ignored.
    CHECK(decode_header(hex("00 C1 00 00"))->command == 1);
}

TEST_CASE("the command table: request and reply sizes")
{
    CHECK(reply_size(Command::read_voltage_and_status) == 4);
    CHECK(reply_size(Command::read_temperature) == 3);
    CHECK(reply_size(Command::read_settings) == 22);
    CHECK(reply_size(Command::read_pid_config) == 12);
    CHECK(reply_size(Command::read_balance_power) == 1);
    CHECK(request_size(Command::write_settings) == 8);
    CHECK(request_size(Command::write_balance_level) == 2);
    CHECK(request_size(Command::write_pid_config) == 12);
    CHECK(request_size(Command::timing) == 0);
    CHECK_FALSE(known_command(14));
}

TEST_CASE("requests: the 16-cell voltage read and the broadcast level clear")
{
    CHECK(build_request(Header{.command = 1, .cells = 15, .sequence = 3}, {}) == hex("00 01 00 7B"));
    Bytes level;
    put_le(level, 0, 2);
    const Bytes recs[] = {level};
    CHECK(build_request(Header{.broadcast = true, .command = 11, .cells = 31, .sequence = 4}, recs) == hex("00 2B 00 FC 00 00"));
}

TEST_CASE("a 2-cell voltage reply: raws, flags and volts")
{
    auto r = parse_reply(hex("00 11 02 0B | 95 0E 00 00 | CE 8E 00 00"));
    REQUIRE(std::holds_alternative<Reply>(r));
    auto& reply = std::get<Reply>(r);
    CHECK(reply.header.hops == 2);
    REQUIRE(reply.records.size() == 2);
    CHECK_FALSE(check_count(reply, 2));
    auto c0 = decode_voltage(reply.records[0]);
    auto c1 = decode_voltage(reply.records[1]);
    CHECK(c0.raw() == 3733);
    CHECK_FALSE(c0.balancing());
    CHECK(c1.raw() == 3790);
    CHECK(c1.balancing());
    CHECK(classify(c1) == Reading::value);
    const VoltScale s{.volts_per_step = Settings{}.volts_per_step(), .calibration = bits_float(0x400D70A4), .samples = 5};
    CHECK(*raw_to_volt(c0.raw(), s) == Approx(3.299972).margin(1e-6));
}

TEST_CASE("reply errors: not seen, partial records, broadcast record, short replies")
{
    auto kind = [](const std::variant<Reply, CellError>& r) { return std::get<CellError>(r).kind(); };
    CHECK(kind(parse_reply(hex("00 01 02 0B 95 0E 00 00"))) == CellErrorKind::no_such_cell);
    CHECK(kind(parse_reply(hex("00 11 02 0B 95 0E 00 00 CE"))) == CellErrorKind::spurious_data);
    CHECK(kind(parse_reply(hex("00 11"))) == CellErrorKind::spurious_data);
    CHECK(kind(parse_reply(hex("00 12 01 00 01"))) == CellErrorKind::spurious_data);  // Identify has no reply data

    // A broadcast WriteBalanceLevel comes back with its 2-byte request record,
    // skipped by the request size (the reply size is 0).
    auto b = parse_reply(hex("00 3B 03 FC 00 00"));
    REQUIRE(std::holds_alternative<Reply>(b));
    CHECK(std::get<Reply>(b).records.empty());
    CHECK(kind(parse_reply(hex("00 3B 03 FC 00"))) == CellErrorKind::spurious_data);

    auto one = std::get<Reply>(parse_reply(hex("00 11 02 0B 95 0E 00 00")));
    auto err = check_count(one, 2);
    REQUIRE(err);
    CHECK(err->kind() == CellErrorKind::short_reply);
}

TEST_CASE("invalid raws are classified, never converted")
{
    CHECK(classify(VoltageStatus{0}) == Reading::none);
    CHECK(classify(VoltageStatus{0x8000}) == Reading::none);       // flags only
    CHECK(classify(VoltageStatus{5115}) == Reading::value);
    CHECK(classify(VoltageStatus{5116}) == Reading::invalid);
    CHECK(classify(VoltageStatus{0x2000 | 3000}) == Reading::invalid);  // bit 13
    CHECK(classify(VoltageStatus{0xC000 | 3000}) == Reading::value);
    CHECK(classify(VoltageStatus{7460}, 10) == Reading::value);  // a module summing 10 readings
    CHECK(classify(VoltageStatus{3000}, 0) == Reading::invalid);
    CHECK(classify_thermistor(0) == Reading::none);
    CHECK(classify_thermistor(1022) == Reading::value);
    CHECK(classify_thermistor(1023) == Reading::invalid);
    CHECK(classify_thermistor(4095) == Reading::invalid);
    CHECK_FALSE(raw_to_celsius(0, 3950));
    CHECK_FALSE(raw_to_celsius(1023, 3950));
}

TEST_CASE("temperature packing: int 850, ext 512")
{
    CHECK(encode(Temperatures{850, 512}) == hex("52 03 20"));
    CHECK(decode_temperatures(hex("52 03 20")) == Temperatures{850, 512});
    CHECK(decode_temperatures(encode(Temperatures{4095, 1})) == Temperatures{4095, 1});
}

TEST_CASE("the settings record with the firmware defaults (loadResRaw 52 = 0x34)")
{
    Settings s;
    s.git_version = 0x12345678;
    const auto wire = hex("78 56 34 12 B8 01 01 80 A4 70 0D 40 52 03 A7 12 6E 0F 6E 0F 05 34");
    CHECK(encode(s) == wire);
    CHECK(decode_settings(wire) == s);
    CHECK(s.calibration() == Approx(2.2100000381).epsilon(1e-9));
    CHECK(s.volts_per_step() == 0.002);
    CHECK(s.load_resistance() == 3.25);
    CHECK_THROWS(decode_settings(hex("78 56")));
}

TEST_CASE("write records round-trip")
{
    WriteSettings w{float_bits(2.25f), 850, 0};
    CHECK(encode(w).size() == request_size(Command::write_settings));
    CHECK(decode_write_settings(encode(w)) == w);
    PidConfig p{125, 25, 2};
    CHECK(encode(p) == hex("7D 00 00 00 19 00 00 00 02 00 00 00"));
    CHECK(decode_pid(encode(p)) == p);
    CHECK(decode_packet_counters(hex("00 00 05 00")) == PacketCounters{0, 5});
}

TEST_CASE("voltage conversions both ways use the module's sample count")
{
    const VoltScale s{.volts_per_step = 0.002, .calibration = bits_float(0x400D70A4), .samples = 5};
    CHECK(*raw_to_volt(3733, s) == Approx(3.299972).margin(1e-6));
    CHECK(volt_to_raw(3.30, s) == 3733);
    CHECK(volt_to_raw(3.45, s) == 3902);
    CHECK(volt_to_raw(std::nullopt, s) == 0);
    CHECK_FALSE(raw_to_volt(0, s));
    const VoltScale off{.volts_per_step = 0.002, .calibration = 2.21, .offset = 0.01, .samples = 5};
    CHECK(*raw_to_volt(3733, off) == Approx(3.309972).margin(1e-6));
    // A module averaging 10 samples: the same voltage is twice the raw.
    const VoltScale ten{.volts_per_step = 0.002, .calibration = 2.21, .samples = 10};
    CHECK(volt_to_raw(3.30, ten) == 7466);
    CHECK(*raw_to_volt(7466, ten) == Approx(3.3).margin(1e-3));
}

TEST_CASE("thermistor conversions (B 3950)")
{
    CHECK(*raw_to_celsius(512, 3950) == Approx(25.04).margin(0.01));
    CHECK(*raw_to_celsius(700, 3950) == Approx(43.485).margin(0.01));
    CHECK(*raw_to_celsius(850, 3950) == Approx(65.72).margin(0.01));
    CHECK(*raw_to_celsius(940, 3950) == Approx(91.87).margin(0.01));
    CHECK(*raw_to_celsius(200, 3950) == Approx(-3.765).margin(0.01));
    CHECK(celsius_to_raw(45, 3950) == 713);
    CHECK(celsius_to_raw(60, 3950) == 819);
}

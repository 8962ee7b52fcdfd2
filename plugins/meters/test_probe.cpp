// Probing (§7.2, §10): order, access fallback, every accepted code.
#include "test_fake_meter.hpp"

#include <catch2/catch.hpp>

using namespace moat::meters;
using namespace moat::meters::test;
using modbus::Request;
using modbus::Response;
using A = Access;

TEST_CASE("probe plan: ABB, EM24, the 0xFC02 types together, SDM630 v1 last")
{
    auto plan = probe_plan();
    REQUIRE(plan.size() == 4);
    CHECK(plan[0].address == 0x8960);
    CHECK(plan[0].candidates == std::vector<const MeterType*>{&meter_type(MeterKind::abb_b2x)});
    CHECK(plan[1].address == 0x000B);
    CHECK(plan[1].candidates == std::vector<const MeterType*>{&meter_type(MeterKind::em24rtu)});
    CHECK(plan[2].address == 0xFC02);
    CHECK(plan[2].candidates == std::vector<const MeterType*>{&meter_type(MeterKind::sdm120),
                                                              &meter_type(MeterKind::sdm630v2),
                                                              &meter_type(MeterKind::sdm72dv2)});
    CHECK(std::vector<A>(plan[2].access.begin(), plan[2].access.end()) == std::vector<A>{A::holding, A::input});
    CHECK(plan[3].address == 0x001C);
    CHECK(plan[3].candidates == std::vector<const MeterType*>{&meter_type(MeterKind::sdm630v1)});
    for (std::size_t i : {0, 1, 3}) CHECK(std::vector<A>(plan[i].access.begin(), plan[i].access.end()) == std::vector<A>{A::holding});
}

TEST_CASE("every accepted identification code of §2")
{
    struct Case {
        std::size_t step;
        std::uint16_t code;
        MeterKind kind;
        std::string_view model;
    };
    const Case cases[] = {
        {0, 16946, MeterKind::abb_b2x, "ABB_B2x"},
        {1, 70, MeterKind::em24rtu, "EM24-DIN AV9"},
        {1, 71, MeterKind::em24rtu, "EM24-DIN AV2"},
        {1, 72, MeterKind::em24rtu, "EM24-DIN AV5"},
        {1, 73, MeterKind::em24rtu, "EM24-DIN AV6"},
        {2, 32, MeterKind::sdm120, "SDM120Modbus"},
        {2, 112, MeterKind::sdm630v2, "SDM630Modbusv2"},
        {2, 121, MeterKind::sdm630v2, "SDM630Modbusv2"},
        {2, 137, MeterKind::sdm72dv2, "SDM72DMv2"},
        {2, 135, MeterKind::sdm72dv2, "SDM72Dv2"},
        {3, 16512, MeterKind::sdm630v1, "SDM630Modbusv1"},
        {3, 16438, MeterKind::sdm630v1, "SDM630Modbusv1"},
        {3, 16384, MeterKind::sdm630v1, "SDM630Modbusv1"},
    };
    const auto plan = probe_plan();
    for (const auto& c : cases) {
        INFO("code " << c.code);
        auto id = identify(plan[c.step], c.code);
        REQUIRE(id);
        CHECK(id->type->kind == c.kind);
        CHECK(id->model == c.model);
        // The other steps do not accept it.
        for (std::size_t s = 0; s < plan.size(); ++s)
            if (s != c.step) CHECK_FALSE(identify(plan[s], c.code));
    }
    for (std::uint16_t code : {0, 1, 33, 69, 74, 111, 136, 0x4233, 16385, 0xFFFF})
        for (const auto& step : plan) CHECK_FALSE(identify(step, code));
}

TEST_CASE("Prober: the requests a device with nothing recognisable gets")
{
    Prober p;
    std::vector<Request> sent;
    const Response refused{{}, 2};
    while (auto r = p.next()) {
        sent.push_back(*r);
        p.feed(refused);
    }
    CHECK(p.done());
    CHECK_FALSE(p.result());
    CHECK(sent == std::vector<Request>{Request::read_holding(0x8960, 1), Request::read_holding(0x000B, 1),
                                       Request::read_holding(0xFC02, 1), Request::read_input(0xFC02, 1),
                                       Request::read_holding(0x001C, 1)});
    CHECK_THROWS_AS(p.feed(refused), std::logic_error);
}

TEST_CASE("Prober: no reply ends a step without the FC04 retry")
{
    Prober p;
    std::vector<Request> sent;
    while (auto r = p.next()) {
        sent.push_back(*r);
        p.feed(std::nullopt);
    }
    CHECK_FALSE(p.result());
    CHECK(sent == std::vector<Request>{Request::read_holding(0x8960, 1), Request::read_holding(0x000B, 1),
                                       Request::read_holding(0xFC02, 1), Request::read_holding(0x001C, 1)});
}

TEST_CASE("Prober: an unknown code ends the step without the FC04 retry")
{
    Prober p;
    std::vector<Request> sent;
    while (auto r = p.next()) {
        sent.push_back(*r);
        p.feed(Response{{0x0099}, std::nullopt});
    }
    CHECK_FALSE(p.result());
    CHECK(sent.size() == 4);
}

TEST_CASE("Prober: the first match wins and ends the probe")
{
    Prober p;
    p.feed(Response{{}, 2});      // ABB register refused
    p.feed(Response{{0}, std::nullopt}); // EM24 register reads 0
    REQUIRE(p.next() == Request::read_holding(0xFC02, 1));
    p.feed(Response{{0x0070}, std::nullopt});
    CHECK(p.done());
    CHECK_FALSE(p.next());
    REQUIRE(p.result());
    CHECK(p.result()->type->kind == MeterKind::sdm630v2);
}

TEST_CASE("an Eastron that refuses FC03 on 0xFC02 is found with FC04 (§2.1)")
{
    FakeMeter m;
    m.set(A::input, 0xFC02, {0x0020});
    m.set(A::holding, 0xFC02, {0x0020});
    m.refused.insert({modbus::Function::read_holding_registers, 0xFC02});
    Client c(m, Transport::rtu);
    auto id = c.probe();
    REQUIRE(id);
    CHECK(id->type->kind == MeterKind::sdm120);
    CHECK(m.log == std::vector<Request>{Request::read_holding(0x8960, 1), Request::read_holding(0x000B, 1),
                                        Request::read_holding(0xFC02, 1), Request::read_input(0xFC02, 1)});
}

TEST_CASE("probing over the wire: each type, RTU and TCP, other units stay silent")
{
    for (auto transport : {Transport::rtu, Transport::tcp}) {
        FakeMeter abb;
        abb.text(A::holding, 0x8960, "B23 312-100", 6);
        CHECK(Client(abb, transport).probe()->type->kind == MeterKind::abb_b2x);

        FakeMeter em24;
        em24.set(A::holding, 0x000B, {73});
        CHECK(Client(em24, transport).probe()->model == "EM24-DIN AV6");

        FakeMeter v1;
        v1.f32(A::holding, 0x001C, 2.0f);
        CHECK(Client(v1, transport).probe()->type->kind == MeterKind::sdm630v1);

        FakeMeter nothing;
        nothing.silent = true;
        CHECK_FALSE(Client(nothing, transport).probe());
    }
}

TEST_CASE("type table of §2")
{
    using namespace std::chrono_literals;
    CHECK(meter_types().size() == 6);
    for (const auto& t : meter_types()) {
        INFO(t.driver);
        CHECK(t.min_timeout == 500ms);
        CHECK(std::vector<std::uint8_t>(t.units.begin(), t.units.end()) == std::vector<std::uint8_t>{1});
        CHECK(&meter_type(t.kind) == &t);
    }
    CHECK(meter_type(MeterKind::abb_b2x).product_id == 0xB017);
    CHECK(meter_type(MeterKind::em24rtu).product_id == 0xB017);
    for (auto k : {MeterKind::sdm120, MeterKind::sdm630v1, MeterKind::sdm630v2, MeterKind::sdm72dv2})
        CHECK(meter_type(k).product_id == 0xB023);
    CHECK(meter_type(MeterKind::sdm630v1).product_name == "Eastron SDM630-Modbus v1");
    REQUIRE(meter_type(MeterKind::em24rtu).required_setting);
    CHECK(meter_type(MeterKind::em24rtu).required_setting->address == 0x1101);
    CHECK(meter_type(MeterKind::em24rtu).required_setting->value == 7);
    CHECK_FALSE(meter_type(MeterKind::sdm120).required_setting);
}

// config_json.h: what model configs (VaeConfig, AeConfig) share when they read and write JSON —
// the shortest float that round-trips, and typed field readers whose errors name the config, the
// key and the offending value.
//
//   nlohmann::json j = gt::detail::parse_config_object(text, "VaeConfig");
//   for (auto it = j.begin(); it != j.end(); ++it) {
//     gt::detail::ConfigField f{"VaeConfig", it.key(), it.value()};
//     if (it.key() == "latent") c.latent = f.integer();
//   }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gt::detail {

// The shortest decimal that reads back as the same float (0.1f -> 0.1, not 0.100000001490116), as a
// double for the JSON writer: config files stay readable and the round trip stays exact.
double shortest_decimal(float v);

// Parses `text` and checks it is a JSON object; errors name `what` and quote the text.
nlohmann::json parse_config_object(const std::string& text, const char* what);

struct ConfigField {
  const char* what;  // "VaeConfig"
  const std::string& key;
  const nlohmann::json& value;
  int64_t integer() const;
  double number() const;
  std::string string() const;
  bool boolean() const;
  std::vector<int64_t> integers() const;  // a JSON array of integers
};

}  // namespace gt::detail

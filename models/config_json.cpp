// config_json.cpp: shared JSON helpers of the model configs.
#include "models/config_json.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace gt::detail {

double shortest_decimal(float v) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

nlohmann::json parse_config_object(const std::string& text, const char* what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    GT_FAIL(what << ": not valid JSON (" << e.what() << "): '" << text.substr(0, 80) << "'");
  }
  GT_CHECK(j.is_object(), what << ": expected a JSON object, got '" << text.substr(0, 80) << "'");
  return j;
}

int64_t ConfigField::integer() const {
  GT_CHECK(value.is_number_integer(), what << ": '" << key << "' must be an integer, got " << value.dump());
  return value.get<int64_t>();
}
double ConfigField::number() const {
  GT_CHECK(value.is_number(), what << ": '" << key << "' must be a number, got " << value.dump());
  return value.get<double>();
}
std::string ConfigField::string() const {
  GT_CHECK(value.is_string(), what << ": '" << key << "' must be a string, got " << value.dump());
  return value.get<std::string>();
}
bool ConfigField::boolean() const {
  GT_CHECK(value.is_boolean(), what << ": '" << key << "' must be true or false, got " << value.dump());
  return value.get<bool>();
}
std::vector<int64_t> ConfigField::integers() const {
  GT_CHECK(value.is_array(), what << ": '" << key << "' must be an array of integers, got " << value.dump());
  std::vector<int64_t> out;
  for (const auto& v : value) out.push_back(ConfigField{what, key, v}.integer());
  return out;
}

}  // namespace gt::detail

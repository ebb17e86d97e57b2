// The names users write for activations and outputs, in one table each.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "loss.hpp"

namespace dp {

inline const std::vector<std::pair<std::string, Activation>>& activation_names() {
    static const std::vector<std::pair<std::string, Activation>> table = {
        {"identity", Activation::identity}, {"relu", Activation::relu},
        {"leaky_relu", Activation::leaky_relu}, {"elu", Activation::elu},
        {"selu", Activation::selu},         {"softplus", Activation::softplus},
        {"sigmoid", Activation::sigmoid},   {"logistic", Activation::sigmoid},
        {"tanh", Activation::tanh},         {"abs", Activation::abs},
        {"swish", Activation::swish},       {"silu", Activation::silu},
        {"mish", Activation::mish},         {"necro_relu", Activation::necro_relu}};
    return table;
}

inline const std::vector<std::pair<std::string, Output>>& output_names() {
    static const std::vector<std::pair<std::string, Output>> table = {
        {"identity", Output::identity}, {"sigmoid", Output::sigmoid}, {"softmax", Output::softmax}};
    return table;
}

template <typename E>
E parse_name(const std::vector<std::pair<std::string, E>>& table, const std::string& name,
             const char* what) {
    std::string known;
    for (const auto& [key, value] : table) {
        if (key == name) return value;
        known += (known.empty() ? "'" : ", '") + key + "'";
    }
    throw std::invalid_argument("unknown " + std::string(what) + " '" + name + "'; expected one of " + known);
}

inline Output parse_output(const std::string& name) {
    return parse_name(output_names(), name, "output");
}

}  // namespace dp

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
        {"sigmoid", Activation::sigmoid},   {"logistic", Activation::sigmoid},
        {"tanh", Activation::tanh}};
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

inline ActivationSpec parse_activation(const std::string& name, double grad_at_zero) {
    if (!(grad_at_zero >= 0.0 && grad_at_zero <= 1.0))
        throw std::invalid_argument("grad_at_zero (ReLU'(0)) must be in [0, 1], got " +
                                    std::to_string(grad_at_zero));
    return {parse_name(activation_names(), name, "activation"), grad_at_zero};
}

inline Output parse_output(const std::string& name) {
    return parse_name(output_names(), name, "output");
}

}  // namespace dp

// The names users write for activations and outputs, in one table each.
#pragma once

#include <cmath>
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
        {"mish", Activation::mish},         {"necro_relu", Activation::necro_relu},
        {"prelu", Activation::prelu},       {"acon", Activation::acon}};
    return table;
}

inline const std::vector<std::pair<std::string, Output>>& output_names() {
    static const std::vector<std::pair<std::string, Output>> table = {
        {"identity", Output::identity}, {"sigmoid", Output::sigmoid}, {"softmax", Output::softmax},
        {"exp", Output::exp}};
    return table;
}

// Each output's losses, its own first (scikit-learn's names where it has the loss).
inline std::vector<std::pair<std::string, Loss>> loss_names(Output out) {
    switch (out) {
        case Output::identity:
            return {{"squared_error", Loss::squared_error}, {"absolute_error", Loss::absolute_error},
                    {"huber", Loss::huber}};
        case Output::sigmoid: return {{"binary_log_loss", Loss::binary_log_loss}};
        case Output::softmax: return {{"log_loss", Loss::log_loss}};
        case Output::exp: return {{"poisson", Loss::poisson}};
    }
    return {};
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

// The loss spec for an output name and a loss name ("" for the output's own).
inline LossSpec parse_loss(const std::string& output, const std::string& loss, double huber_delta) {
    LossSpec spec;
    spec.output = parse_output(output);
    spec.loss = loss.empty() ? default_loss(spec.output)
                             : parse_name(loss_names(spec.output), loss, ("loss for output '" + output + "'").c_str());
    if (!(std::isfinite(huber_delta) && huber_delta > 0))
        throw std::invalid_argument("huber_delta must be finite and > 0, got " + std::to_string(huber_delta));
    spec.huber_delta = huber_delta;
    return spec;
}

}  // namespace dp

// ModelWrap's generation sessions (nn::GenerationSession): open/add/cancel/close run on the JavaScript thread
// (add and cancel only queue work for the next step), step() runs on the compute thread under the model's lock
// with the adapter it names, like generate().
#include <ATen/ATen.h>

#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/model_wrap.h"

namespace nodetune::binding {
namespace {

// An optional array of numbers (typed or plain) as a vector of `T` (undefined/null: empty).
template <typename T>
std::vector<T> Numbers(const Napi::Object& o, const char* key, c10::ScalarType dtype) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  at::Tensor t = TensorFromJs(v, std::nullopt, std::nullopt, Borrow::kCopy, std::string("session.add(): ") + key).to(dtype).contiguous();
  return std::vector<T>(t.data_ptr<T>(), t.data_ptr<T>() + t.numel());
}

nn::RowOptions RowOptionsFromJs(const Napi::Value& value) {
  if (!value.IsObject()) fail("ERR_ARGUMENT", "session.add(): options must be an object");
  auto o = value.As<Napi::Object>();
  nn::RowOptions r;
  ReadSampling(o, r);
  r.presence_penalty = Num(o, "presencePenalty", 0.0);
  r.frequency_penalty = Num(o, "frequencyPenalty", 0.0);
  r.penalty_context = Int(o, "penaltyContext", 0);
  r.bias_tokens = Numbers<int64_t>(o, "biasTokens", at::kLong);
  r.bias_values = Numbers<float>(o, "biasValues", at::kFloat);
  r.stop_tokens = Numbers<int64_t>(o, "stopTokens", at::kLong);
  r.logprobs = Int(o, "logprobs", -1);
  return r;
}

int64_t HandleArg(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) fail("ERR_ARGUMENT", std::string(what) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

}  // namespace

std::shared_ptr<nn::GenerationSession> ModelWrap::SessionArg(const Napi::Value& handle) {
  auto it = sessions_.find(HandleArg(handle, "session handle"));
  if (it == sessions_.end()) fail("ERR_STATE", "the generation session is closed");
  return it->second;
}

Napi::Value ModelWrap::SessionOpen(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const nn::ModelConfig& c = state_->model->config();
    if (!nn::is_decoder(c) || c.task != nn::Task::kCausalLm)
      fail("ERR_STATE", "a generation session needs a causal-lm decoder model (task is not causal-lm)");
    const int64_t id = next_session_++;
    sessions_[id] = std::make_shared<nn::GenerationSession>(c.vocab_size);
    return Napi::Number::New(info.Env(), double(id));
  });
}

// sessionAdd(handle, row, ids, options)
Napi::Value ModelWrap::SessionAdd(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = SessionArg(info[0]);
    const int64_t row = HandleArg(info[1], "session.add(): row");
    at::Tensor ids = TensorFromJs(info[2], std::nullopt, std::nullopt, Borrow::kCopy, "session.add(): ids").to(at::kLong).contiguous().view({-1});
    session->add(row, std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()), RowOptionsFromJs(info[3]));
    return info.Env().Undefined();
  });
}

// sessionCancel(handle, row): the row leaves at the next step (its cache rows are freed then).
Napi::Value ModelWrap::SessionCancel(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    SessionArg(info[0])->cancel(HandleArg(info[1], "session.cancel(): row"));
    return info.Env().Undefined();
  });
}

// sessionStep(handle, adapter) -> Promise<{ tokens: [{ row, token, finished, reason, logprob?, topIds?,
// topLogprobs? }], rows, length, capacity }>
Napi::Value ModelWrap::SessionStep(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = SessionArg(info[0]);
    const std::string adapter = AdapterArg(info[1], *state_->adapters);
    return Queue(
        info, adapter, [session](State& state) { return session->step(*state.model); },
        [](Napi::Env e, const nn::StepResult& r) -> Napi::Value {
          Napi::Array tokens = Napi::Array::New(e, r.tokens.size());
          for (size_t i = 0; i < r.tokens.size(); ++i) {
            const nn::StepToken& t = r.tokens[i];
            Napi::Object o = Napi::Object::New(e);
            o.Set("row", double(t.row));
            o.Set("token", double(t.token));
            o.Set("finished", t.finished);
            o.Set("reason", t.reason);
            if (t.scored) {
              o.Set("logprob", double(t.logprob));
              Napi::Array ids = Napi::Array::New(e, t.top_ids.size()), lps = Napi::Array::New(e, t.top_ids.size());
              for (size_t j = 0; j < t.top_ids.size(); ++j) ids.Set(uint32_t(j), double(t.top_ids[j])), lps.Set(uint32_t(j), double(t.top_logprobs[j]));
              o.Set("topIds", ids);
              o.Set("topLogprobs", lps);
            }
            tokens.Set(uint32_t(i), o);
          }
          Napi::Object out = Napi::Object::New(e);
          out.Set("tokens", tokens);
          out.Set("rows", double(r.rows));
          out.Set("length", double(r.length));
          out.Set("capacity", double(r.capacity));
          return out;
        });
  });
}

// sessionClose(handle): frees the session (a step in flight finishes on its own reference).
Napi::Value ModelWrap::SessionClose(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    sessions_.erase(HandleArg(info[0], "session handle"));
    return info.Env().Undefined();
  });
}

}  // namespace nodetune::binding

#include "dist/communicator.h"

// LibTorch builds with distributed support define USE_C10D_GLOO (TorchConfig's interface definitions); without
// it, joining a group is an ERR_DIST error saying so.
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#include <torch/version.h>

#include <thread>

#include "core/error.h"

namespace nodetune::dist {
namespace {

std::string joined_key(int rank) { return "nodetune/joined/" + std::to_string(rank); }

// c10d's message without the backtrace, with what we were doing and who we are.
[[noreturn]] void fail_dist(const RendezvousOptions& o, const std::string& what, const std::string& detail) {
  fail("ERR_DIST", "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": " + what + ": " + detail);
}

std::string message_of(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

#ifdef USE_C10D_GLOO
struct Communicator::Group {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

namespace {

// LibTorch 2.4+ serves the store with libuv by default, but builds without libuv (Debian's) refuse that:
// libuv where the build has it, the classic server where it does not. Older versions have only the classic one.
c10::intrusive_ptr<c10d::Store> open_store(const std::string& host, c10d::TCPStoreOptions options) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, options);
  } catch (const std::exception& e) {
    if (!options.useLibUV || std::string(e.what()).find("libuv") == std::string::npos) throw;
  }
  options.useLibUV = false;
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

}  // namespace

Communicator::Communicator(const RendezvousOptions& o) : options_(o) {
  if (o.world_size < 1) fail("ERR_ARGUMENT", "WORLD_SIZE must be at least 1, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size)
    fail("ERR_ARGUMENT", "RANK must be in [0, " + std::to_string(o.world_size - 1) + "], got " + std::to_string(o.rank));
  if (o.port <= 0 || o.port > 65535) fail("ERR_ARGUMENT", "MASTER_PORT must be in 1..65535, got " + std::to_string(o.port));
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(o.port);
  store_options.isServer = o.rank == 0;
  store_options.numWorkers = c10::nullopt;  // we count arrivals ourselves, to name who is missing
  store_options.waitWorkers = false;
  store_options.timeout = o.timeout;
  try {
    store_ = open_store(o.master_addr, store_options);
  } catch (const std::exception& e) {
    fail_dist(o, "cannot reach the rendezvous store at " + o.master_addr + ":" + std::to_string(o.port) +
                     (o.rank == 0 ? " (as its host)" : ""), message_of(e));
  }
  // Arrival: each rank marks itself, then waits for the others (polling, so the missing ones can be named).
  store_->set(joined_key(o.rank), std::vector<uint8_t>{1});
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  std::vector<int> missing;
  for (;;) {
    missing.clear();
    for (int r = 0; r < o.world_size; ++r)
      if (!store_->check({joined_key(r)})) missing.push_back(r);
    if (missing.empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + std::to_string(missing[i]);
    fail_dist(o, "rendezvous did not complete", "rank(s) " + list + " did not join within " +
                                                    std::to_string(o.timeout.count()) + " ms");
  }
  try {
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(o.timeout);
    const char* iface_host = o.master_addr == "localhost" || o.master_addr.rfind("127.", 0) == 0 ? "127.0.0.1" : nullptr;
    gloo_options->devices.push_back(iface_host ? c10d::ProcessGroupGloo::createDeviceForHostname(iface_host)
                                               : c10d::ProcessGroupGloo::createDefaultDevice());
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("nodetune/gloo", store_);
    group_ = std::make_unique<Group>(Group{c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.world_size, gloo_options)});
  } catch (const std::exception& e) {
    fail_dist(o, "connecting to the other ranks failed", message_of(e));
  }
}

Communicator::~Communicator() = default;

void Communicator::wait(const char* what, const std::function<void()>& run) {
  try {
    run();
  } catch (const nodetune::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail_dist(options_, std::string(what) + " failed (a peer died or timed out after " +
                            std::to_string(options_.timeout.count()) + " ms)", message_of(e));
  }
}

void Communicator::all_reduce(std::vector<at::Tensor>& tensors, bool average) {
  if (tensors.empty() || options_.world_size == 1) return;
  // One flat buffer per dtype and device: one collective instead of one per tensor.
  std::vector<std::vector<size_t>> buckets;
  for (size_t i = 0; i < tensors.size(); ++i) {
    bool placed = false;
    for (auto& b : buckets) {
      const auto& first = tensors[b.front()];
      if (first.scalar_type() == tensors[i].scalar_type() && first.device() == tensors[i].device()) {
        b.push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) buckets.push_back({i});
  }
  for (const auto& b : buckets) {
    std::vector<at::Tensor> parts;
    for (size_t i : b) parts.push_back(tensors[i].reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(parts)};
    wait("all-reduce", [&] {
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      group_->gloo->allreduce(flat, opts)->wait(options_.timeout);
    });
    if (average) flat[0].div_(options_.world_size);
    int64_t offset = 0;
    for (size_t i : b) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(flat[0].narrow(0, offset, n).view_as(tensors[i]));
      offset += n;
    }
  }
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors, int root) {
  if (tensors.empty() || options_.world_size == 1) return;
  if (root < 0 || root >= options_.world_size) fail("ERR_ARGUMENT", "broadcast(): root " + std::to_string(root) + " is not a rank");
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    wait("broadcast", [&] {
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      group_->gloo->broadcast(one, opts)->wait(options_.timeout);
    });
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

void Communicator::barrier() {
  if (options_.world_size == 1) return;
  wait("barrier", [&] { group_->gloo->barrier()->wait(options_.timeout); });
}

#else
struct Communicator::Group {};

Communicator::Communicator(const RendezvousOptions& o) : options_(o) {
  fail("ERR_DIST", "this LibTorch was built without distributed support (no Gloo): use a LibTorch from pytorch.org or Debian's");
}
Communicator::~Communicator() = default;
void Communicator::wait(const char*, const std::function<void()>&) {}
void Communicator::all_reduce(std::vector<at::Tensor>&, bool) {}
void Communicator::broadcast(std::vector<at::Tensor>&, int) {}
void Communicator::barrier() {}
#endif

}  // namespace nodetune::dist

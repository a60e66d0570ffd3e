// Collective communication between training processes on PyTorch's own engine (c10d): rendezvous through a
// TCPStore (the torchrun variables MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE), Gloo for the collectives.
// A rendezvous that does not complete, or a peer that dies, is an ERR_DIST error naming the rank(s) - never a hang.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <c10/util/intrusive_ptr.h>

namespace c10d {
class Store;
}  // namespace c10d

namespace nodetune::dist {

struct RendezvousOptions {
  std::string master_addr = "127.0.0.1";
  int port = 29500;
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{60000};
};

class Communicator {
 public:
  // Joins the group: rank 0 hosts the store; everyone waits (up to the timeout) for all ranks to arrive.
  explicit Communicator(const RendezvousOptions& options);
  ~Communicator();

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

  // In place: every tensor becomes the mean (or sum) over the ranks. Tensors are flattened into one buffer per
  // dtype (a single collective) and copied back.
  void all_reduce(std::vector<at::Tensor>& tensors, bool average);
  // In place: every rank ends with root's values.
  void broadcast(std::vector<at::Tensor>& tensors, int root);
  void barrier();

 private:
  void wait(const char* what, const std::function<void()>& run);
  // The Gloo group, held by its own type behind a pointer to an incomplete struct: in LibTorch 1.x
  // ProcessGroupGloo is a c10d::ProcessGroup, in 2.x a c10d::Backend, so no common base type is named here.
  struct Group;
  RendezvousOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::unique_ptr<Group> group_;
};

}  // namespace nodetune::dist

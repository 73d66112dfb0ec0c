// grpc_replay: sends pre-serialised unary gRPC requests, each exactly once, from N connections
// with one call at a time each, and prints what happened as one JSON line. It is the load
// generator of `make bench` where every call must carry a different message (registrations:
// a document is registered once), which h2load cannot send. Built and run by
// egov_testing.load.replay_unary; written in C++ so that the client takes little of the CPU
// the server under test runs on.
//
// usage: grpc_replay ADDRESS METHOD FRAMES CONNECTIONS [HEADER-NAME HEADER-VALUE]...
//   FRAMES: the requests, each as a 4-byte big-endian length and the serialised message.
// Exit status: 0 every call succeeded; 4 some failed (the JSON line says how many, and the
// first); 2 bad arguments or a FRAMES file that cannot be read whole; 3 no connection.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr uint32_t kMaxFrame = 64u << 20;  // the registry's own message size limit

// The frames of PATH, or false (with a reason on stderr) when it cannot be read whole.
bool ReadFrames(const char* path, std::vector<std::string>* frames) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path);
    return false;
  }
  unsigned char prefix[4];
  while (in.read(reinterpret_cast<char*>(prefix), 4)) {
    const uint32_t size = (uint32_t{prefix[0]} << 24) | (uint32_t{prefix[1]} << 16) |
                          (uint32_t{prefix[2]} << 8) | uint32_t{prefix[3]};
    if (size > kMaxFrame) {
      std::fprintf(stderr, "frame %zu of %s is %u bytes, over %u\n", frames->size(), path, size,
                   kMaxFrame);
      return false;
    }
    std::string frame(size, '\0');
    if (!in.read(frame.data(), size)) {
      std::fprintf(stderr, "frame %zu of %s is cut short\n", frames->size(), path);
      return false;
    }
    frames->push_back(std::move(frame));
  }
  if (in.gcount() != 0) {
    std::fprintf(stderr, "%s ends inside a length prefix\n", path);
    return false;
  }
  return true;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || (argc - 5) % 2 != 0) {
    std::fprintf(stderr,
                 "usage: grpc_replay ADDRESS METHOD FRAMES CONNECTIONS [NAME VALUE]...\n");
    return 2;
  }
  const std::string address = argv[1];
  const std::string method = argv[2];
  std::vector<std::string> frames;
  if (!ReadFrames(argv[3], &frames)) return 2;
  const int connections = std::atoi(argv[4]);
  std::vector<std::pair<std::string, std::string>> headers;
  for (int i = 5; i + 1 < argc; i += 2) headers.emplace_back(argv[i], argv[i + 1]);
  if (connections < 1) {
    std::fprintf(stderr, "CONNECTIONS must be at least 1\n");
    return 2;
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
      std::fprintf(stderr, "could not connect to %s\n", address.c_str());
      return 3;
    }
    channels.push_back(std::move(channel));
  }

  std::atomic<size_t> next{0};
  std::atomic<long> failed{0};
  std::atomic<long long> latency_ns{0};
  std::mutex first_error_lock;
  std::string first_error;
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back([&, i] {
      grpc::GenericStub stub(channels[i]);
      for (size_t k = next.fetch_add(1); k < frames.size(); k = next.fetch_add(1)) {
        grpc::Slice slice(frames[k]);
        grpc::ByteBuffer request(&slice, 1);
        grpc::ByteBuffer response;
        grpc::ClientContext context;
        for (const auto& [name, value] : headers) context.AddMetadata(name, value);
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        std::mutex lock;
        std::condition_variable answered;
        bool done = false;
        grpc::Status status;
        const auto sent = std::chrono::steady_clock::now();
        stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                       [&](grpc::Status outcome) {
                         std::lock_guard<std::mutex> guard(lock);
                         status = std::move(outcome);
                         done = true;
                         answered.notify_one();
                       });
        std::unique_lock<std::mutex> wait(lock);
        answered.wait(wait, [&] { return done; });
        latency_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - sent)
                          .count();
        if (!status.ok() && failed.fetch_add(1) == 0) {
          std::lock_guard<std::mutex> guard(first_error_lock);
          first_error = "call " + std::to_string(k) + ": " +
                        std::to_string(status.error_code()) + " " + status.error_message();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double mean_latency_ms =
      frames.empty() ? 0.0 : static_cast<double>(latency_ns.load()) / frames.size() / 1e6;
  std::printf(
      "{\"calls\": %zu, \"failed\": %ld, \"seconds\": %.6f, \"mean_latency_ms\": %.4f, "
      "\"first_error\": %s}\n",
      frames.size(), failed.load(), seconds, mean_latency_ms, JsonString(first_error).c_str());
  return failed.load() == 0 ? 0 : 4;
}

// grpc_replay: sends pre-serialised unary gRPC requests, each exactly once, from N connections
// with one call at a time each, and prints what happened (and the CPU it took) as one JSON
// line. It is the load generator of `make bench` where every call must carry a different
// message (registrations: a document is registered once), which h2load cannot send. Built and run by
// egov_testing.load.replay_unary; written in C++ so that the client takes little of the CPU
// the server under test runs on.
//
// usage: grpc_replay ADDRESS METHOD FRAMES CONNECTIONS [HEADER-NAME HEADER-VALUE]...
//   FRAMES: the requests, each as a 4-byte big-endian length and the serialised message.
// Exit status: 0 every call succeeded; 4 some failed (the JSON line says how many, and the
// first); 2 bad arguments or a FRAMES file that cannot be read whole; 3 no connection.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
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

  // One thread drives every connection through one completion queue: a call that ends starts
  // the next on its connection. No call is handed from thread to thread, which keeps the client's
  // CPU per call low (with the callback API and a thread per connection it was 2.6 times as much
  // on an empty handler, and 1.5 times on a registration).
  struct Call {
    int connection;
    size_t frame;
    std::chrono::steady_clock::time_point sent;
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  };
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (auto& channel : channels) stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
  size_t next = 0;
  size_t in_flight = 0;
  long failed = 0;
  long long latency_ns = 0;
  std::string first_error;
  auto start_call = [&](int connection) {
    auto* call = new Call;
    call->connection = connection;
    call->frame = next++;
    for (const auto& [name, value] : headers) call->context.AddMetadata(name, value);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Slice slice(frames[call->frame]);
    grpc::ByteBuffer request(&slice, 1);
    call->sent = std::chrono::steady_clock::now();
    call->reader = stubs[connection]->PrepareUnaryCall(&call->context, method, request, &queue);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
    ++in_flight;
  };
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < connections && next < frames.size(); ++i) start_call(i);
  void* tag;
  bool ok;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --in_flight;
    latency_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - call->sent)
                      .count();
    if (!call->status.ok() && failed++ == 0) {
      first_error = "call " + std::to_string(call->frame) + ": " +
                    std::to_string(call->status.error_code()) + " " +
                    call->status.error_message();
    }
    if (next < frames.size()) start_call(call->connection);
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double mean_latency_ms =
      frames.empty() ? 0.0 : static_cast<double>(latency_ns) / frames.size() / 1e6;
  // This process's CPU (every thread, gRPC's own included): what it took from the machine.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu_seconds = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                             (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf(
      "{\"calls\": %zu, \"failed\": %ld, \"seconds\": %.6f, \"mean_latency_ms\": %.4f, "
      "\"cpu_seconds\": %.6f, \"first_error\": %s}\n",
      frames.size(), failed, seconds, mean_latency_ms, cpu_seconds,
      JsonString(first_error).c_str());
  return failed == 0 ? 0 : 4;
}

// TUN devices (and the overlay's UDP socket) for Node.js. A reader thread per descriptor drains
// the kernel queue in batches and hands each batch to JavaScript through a thread-safe function,
// so the event loop never blocks and JavaScript sees one callback per batch, not per packet.
// Writes are queued to a writer thread: one call from JavaScript per batch, and the kernel work
// that a write(2) or sendto(2) does runs beside the event loop, not on it.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kMaxPacket = 65536;
constexpr size_t kMaxBatch = 64;
constexpr size_t kQueuedBatches = 32;
// Packets waiting for the writer thread; past this a write drops, like a full device queue.
constexpr size_t kMaxQueuedWrites = 8192;

struct Batch {
  std::vector<uint8_t> data;
  std::vector<uint32_t> lengths;
  std::vector<uint32_t> peers;  // UDP only: each datagram's source IPv4 address
  int error = 0;
};

struct Device;
void DeliverBatch(Napi::Env env, Napi::Function callback, Device* device, Batch* batch);
using ReaderTsfn = Napi::TypedThreadSafeFunction<Device, Batch, DeliverBatch>;

// Writing into a TUN runs the receiving namespace's network stack (TCP included) inside the
// write(2) call, so writes happen on a thread of their own and JavaScript only queues them.
struct WriteBatch {
  std::vector<uint8_t> data;
  std::vector<uint32_t> lengths;
  std::vector<uint32_t> dests;  // UDP only: destination IPv4 address per datagram
  uint16_t port = 0;
};

struct Writer {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<WriteBatch> queue;
  size_t queuedPackets = 0;
  bool stop = false;
  std::thread thread;
  std::atomic<uint64_t> dropped{0};
};

void WriterLoop(int fd, Writer* w) {
  std::deque<WriteBatch> batches;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(w->mu);
      w->cv.wait(lock, [w] { return w->stop || !w->queue.empty(); });
      if (w->queue.empty() && w->stop) return;
      batches.swap(w->queue);
      w->queuedPackets = 0;
    }
    for (auto& b : batches) {
      size_t offset = 0;
      for (size_t i = 0; i < b.lengths.size(); i++) {
        uint32_t len = b.lengths[i];
        ssize_t n;
        do {
          if (b.dests.empty()) {
            n = ::write(fd, b.data.data() + offset, len);
          } else {
            struct sockaddr_in to;
            memset(&to, 0, sizeof(to));
            to.sin_family = AF_INET;
            to.sin_port = htons(b.port);
            to.sin_addr.s_addr = htonl(b.dests[i]);
            n = ::sendto(fd, b.data.data() + offset, len, 0, reinterpret_cast<struct sockaddr*>(&to), sizeof(to));
          }
        } while (n < 0 && errno == EINTR);
        if (n < 0) w->dropped++;
        offset += len;
      }
    }
    batches.clear();
  }
}

struct Device {
  bool udp = false;
  int fd = -1;
  int wakefd = -1;
  std::string name;
  std::atomic<bool> stopping{false};
  bool reading = false;
  bool closed = false;
  std::thread reader;
  ReaderTsfn tsfn;
  std::unique_ptr<Napi::Promise::Deferred> closeDeferred;
  std::unique_ptr<Writer> writer;

  void StopWriter() {
    if (!writer) return;
    {
      std::lock_guard<std::mutex> lock(writer->mu);
      writer->stop = true;
    }
    writer->cv.notify_one();
    if (writer->thread.joinable()) writer->thread.join();
  }

  void CloseFds() {
    StopWriter();
    if (fd >= 0) ::close(fd);
    if (wakefd >= 0) ::close(wakefd);
    fd = wakefd = -1;
  }
};

void DeliverBatch(Napi::Env env, Napi::Function callback, Device* device, Batch* raw) {
  std::unique_ptr<Batch> batch(raw);
  if (env == nullptr || callback.IsEmpty() || device->closed) return;
  auto lengths = Napi::Uint32Array::New(env, batch->lengths.size());
  for (size_t i = 0; i < batch->lengths.size(); i++) lengths[i] = batch->lengths[i];
  auto arena = Napi::Buffer<uint8_t>::Copy(env, batch->data.data(), batch->data.size());
  if (device->udp) {
    auto peers = Napi::Uint32Array::New(env, batch->peers.size());
    for (size_t i = 0; i < batch->peers.size(); i++) peers[i] = batch->peers[i];
    callback.Call({arena, lengths, Napi::Number::New(env, batch->error), peers});
  } else {
    callback.Call({arena, lengths, Napi::Number::New(env, batch->error)});
  }
}

void ReaderLoop(Device* device) {
  while (!device->stopping.load()) {
    struct pollfd fds[2] = {{device->fd, POLLIN, 0}, {device->wakefd, POLLIN, 0}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0 || device->stopping.load()) break;
    auto batch = new Batch();
    batch->data.reserve(kMaxBatch * 2048);
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      batch->error = EIO;
    } else {
      size_t used = 0;
      while (batch->lengths.size() < kMaxBatch) {
        batch->data.resize(used + kMaxPacket);
        ssize_t n;
        if (device->udp) {
          struct sockaddr_in from;
          socklen_t fromLen = sizeof(from);
          n = recvfrom(device->fd, batch->data.data() + used, kMaxPacket, 0, reinterpret_cast<struct sockaddr*>(&from), &fromLen);
          if (n >= 0) batch->peers.push_back(ntohl(from.sin_addr.s_addr));
        } else {
          n = read(device->fd, batch->data.data() + used, kMaxPacket);
        }
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) batch->error = errno;
          break;
        }
        // Each packet starts 8-byte aligned, so JavaScript can sum words through typed arrays.
        used += (static_cast<size_t>(n) + 7) & ~static_cast<size_t>(7);
        batch->lengths.push_back(static_cast<uint32_t>(n));
      }
      batch->data.resize(used);
    }
    if (batch->lengths.empty() && batch->error == 0) {
      delete batch;
      continue;
    }
    int error = batch->error;
    // Blocks while JavaScript is behind: back-pressure lands on the kernel's queue, which drops.
    if (device->tsfn.BlockingCall(batch) != napi_ok) {
      delete batch;
      break;
    }
    if (error != 0) break;
  }
  device->tsfn.Release();
}

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err) {
  auto error = Napi::Error::New(env, what + ": " + strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, err == EPERM     ? "EPERM"
                                           : err == EBUSY   ? "EBUSY"
                                           : err == ENOENT  ? "ENOENT"
                                           : err == EINVAL  ? "EINVAL"
                                           : err == EACCES  ? "EACCES"
                                                            : "E" + std::to_string(err)));
  return error;
}

class TunDevice : public Napi::ObjectWrap<TunDevice> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TunDevice",
                       {InstanceMethod("startReading", &TunDevice::StartReading),
                        InstanceMethod("write", &TunDevice::Write),
                        InstanceMethod("dropped", &TunDevice::Dropped),
                        InstanceMethod("sendTo", &TunDevice::SendTo),
                        InstanceMethod("close", &TunDevice::Close),
                        InstanceMethod("ref", &TunDevice::Ref),
                        InstanceMethod("unref", &TunDevice::Unref),
                        InstanceAccessor("name", &TunDevice::Name, nullptr),
                        InstanceAccessor("fd", &TunDevice::Fd, nullptr)});
  }

  // new TunDevice(name, persist, netnsPath) or, for the overlay, new TunDevice({ udp: { address, port } })
  explicit TunDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TunDevice>(info) {
    Napi::Env env = info.Env();
    if (info.Length() == 1 && info[0].IsObject() && info[0].As<Napi::Object>().Has("udp")) {
      OpenUdp(env, info[0].As<Napi::Object>().Get("udp").As<Napi::Object>());
      return;
    }
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "TunDevice: name must be a string").ThrowAsJavaScriptException();
      return;
    }
    std::string name = info[0].As<Napi::String>();
    bool persist = info.Length() > 1 && info[1].ToBoolean();
    std::string netns = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos) {
      Napi::TypeError::New(env, "TunDevice: interface name must be 1-15 characters without '/'")
          .ThrowAsJavaScriptException();
      return;
    }

    int fd = -1, err = 0;
    std::string step;
    char assigned[IFNAMSIZ] = {0};
    auto open = [&]() {
      if (!netns.empty()) {
        int nsfd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) { err = errno; step = "open netns " + netns; return; }
        // setns affects only this helper thread: the device is created in the namespace of the
        // task that opens /dev/net/tun, and the descriptor keeps working from any namespace.
        if (setns(nsfd, CLONE_NEWNET) != 0) { err = errno; step = "setns " + netns; ::close(nsfd); return; }
        ::close(nsfd);
      }
      fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) { err = errno; step = "open /dev/net/tun"; return; }
      struct ifreq ifr;
      memset(&ifr, 0, sizeof(ifr));
      ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
      strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
      if (ioctl(fd, TUNSETIFF, &ifr) != 0) { err = errno; step = "TUNSETIFF " + name; ::close(fd); fd = -1; return; }
      if (persist && ioctl(fd, TUNSETPERSIST, 1) != 0) { err = errno; step = "TUNSETPERSIST " + name; ::close(fd); fd = -1; return; }
      memcpy(assigned, ifr.ifr_name, IFNAMSIZ - 1);
    };
    if (netns.empty()) {
      open();
    } else {
      std::thread helper(open);
      helper.join();
    }
    if (fd < 0) {
      ErrnoError(env, step, err).ThrowAsJavaScriptException();
      return;
    }
    device_ = new Device();
    device_->fd = fd;
    device_->name = assigned;
    device_->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  ~TunDevice() override {
    // Collected without close(): stop the reader; its finalizer releases the descriptors.
    if (device_ == nullptr) return;
    if (device_->reading) {
      device_->stopping = true;
      uint64_t one = 1;
      if (write(device_->wakefd, &one, sizeof(one)) < 0) { /* reader also stops on EBADF */ }
    } else {
      device_->CloseFds();
      delete device_;
    }
  }

 private:
  Device* device_ = nullptr;

  void OpenUdp(Napi::Env env, Napi::Object opts) {
    std::string address = opts.Get("address").ToString();
    uint32_t port = opts.Get("port").ToNumber().Uint32Value();
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    if (port > 65535 || inet_pton(AF_INET, address.c_str(), &sin.sin_addr) != 1) {
      Napi::TypeError::New(env, "UDP socket: invalid address or port").ThrowAsJavaScriptException();
      return;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ErrnoError(env, "socket", errno).ThrowAsJavaScriptException();
      return;
    }
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&sin), sizeof(sin)) != 0) {
      int err = errno;
      ::close(fd);
      ErrnoError(env, "bind " + address + ":" + std::to_string(port), err).ThrowAsJavaScriptException();
      return;
    }
    socklen_t sinLen = sizeof(sin);
    if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&sin), &sinLen) == 0) port = ntohs(sin.sin_port);
    device_ = new Device();
    device_->udp = true;
    device_->fd = fd;
    device_->name = address + ":" + std::to_string(port);  // the bound port, also when 0 was asked
    device_->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  // sendTo(datagrams: Buffer[], destinations: Uint32Array, port) -> number queued (UDP only)
  Napi::Value SendTo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (!device_->udp || !info[0].IsArray() || !info[1].IsTypedArray() || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "sendTo: expected (Buffer[], Uint32Array, port) on a UDP socket").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto dests = info[1].As<Napi::Uint32Array>();
    WriteBatch batch;
    batch.port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
    if (!Collect(env, info[0].As<Napi::Array>(), batch, &dests)) return env.Undefined();
    return Napi::Number::New(env, Enqueue(std::move(batch)));
  }

  // Gather a JavaScript array of Uint8Arrays into one contiguous batch (one allocation).
  bool Collect(Napi::Env env, Napi::Array packets, WriteBatch& batch, Napi::Uint32Array* dests) {
    uint32_t count = packets.Length();
    if (dests && dests->ElementLength() < count) {
      Napi::TypeError::New(env, "sendTo: one destination per datagram").ThrowAsJavaScriptException();
      return false;
    }
    batch.lengths.reserve(count);
    std::vector<const uint8_t*> sources;
    sources.reserve(count);
    size_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
      napi_value item;
      if (napi_get_element(env, packets, i, &item) != napi_ok) continue;
      napi_typedarray_type type;
      size_t len;
      void* data;
      bool isTyped = false;
      if (napi_is_typedarray(env, item, &isTyped) != napi_ok || !isTyped) continue;
      if (napi_get_typedarray_info(env, item, &type, &len, &data, nullptr, nullptr) != napi_ok) continue;
      if (type != napi_uint8_array || len == 0 || len > kMaxPacket) continue;
      sources.push_back(static_cast<const uint8_t*>(data));
      batch.lengths.push_back(static_cast<uint32_t>(len));
      if (dests) batch.dests.push_back((*dests)[i]);
      total += len;
    }
    batch.data.resize(total);
    size_t at = 0;
    for (size_t i = 0; i < sources.size(); i++) {
      memcpy(batch.data.data() + at, sources[i], batch.lengths[i]);
      at += batch.lengths[i];
    }
    return true;
  }

  uint32_t Enqueue(WriteBatch&& batch) {
    if (!device_->writer) {
      device_->writer = std::make_unique<Writer>();
      device_->writer->thread = std::thread(WriterLoop, device_->fd, device_->writer.get());
    }
    Writer* w = device_->writer.get();
    uint32_t queued = static_cast<uint32_t>(batch.lengths.size());
    bool full;
    {
      std::lock_guard<std::mutex> lock(w->mu);
      full = w->queuedPackets + queued > kMaxQueuedWrites;
      if (!full) {
        w->queuedPackets += queued;
        w->queue.push_back(std::move(batch));
      }
    }
    if (full) {
      w->dropped += queued;
      return 0;
    }
    w->cv.notify_one();
    return queued;
  }

  Napi::Value Name(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), device_ ? device_->name : "");
  }
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), device_ && !device_->closed ? device_->fd : -1);
  }

  bool Usable(Napi::Env env) {
    if (device_ == nullptr || device_->closed) {
      Napi::Error::New(env, "TUN device is closed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // startReading(callback(arena: Buffer, lengths: Uint32Array, errno: number))
  Napi::Value StartReading(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (!info[0].IsFunction()) {
      Napi::TypeError::New(env, "startReading: callback must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (device_->reading) {
      Napi::Error::New(env, "startReading: already reading").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Device* device = device_;
    device->tsfn = ReaderTsfn::New(
        env, info[0].As<Napi::Function>(), "tun-reader", kQueuedBatches, 1, device,
        [](Napi::Env env, void*, Device* device) {
          // Also reached when the environment shuts down with the reader still polling.
          device->stopping = true;
          uint64_t one = 1;
          if (::write(device->wakefd, &one, sizeof(one)) < 0) { /* already stopping */ }
          if (device->reader.joinable()) device->reader.join();
          device->CloseFds();
          if (device->closeDeferred) device->closeDeferred->Resolve(env.Undefined());
          delete device;
        });
    device->reading = true;
    device->reader = std::thread(ReaderLoop, device);
    return env.Undefined();
  }

  // write(packets: Buffer[]) -> number of packets queued for the device (the rest were dropped)
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (!info[0].IsArray() || device_->udp) {
      Napi::TypeError::New(env, "write: expected an array of Buffers (on a TUN device)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    WriteBatch batch;
    if (!Collect(env, info[0].As<Napi::Array>(), batch, nullptr)) return env.Undefined();
    return Napi::Number::New(env, Enqueue(std::move(batch)));
  }

  // dropped() -> packets the device refused or that found the write queue full
  Napi::Value Dropped(const Napi::CallbackInfo& info) {
    uint64_t n = device_ && device_->writer ? device_->writer->dropped.load() : 0;
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  // close() -> Promise<void>, resolved once the descriptor is closed.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto deferred = Napi::Promise::Deferred::New(env);
    if (device_ == nullptr || device_->closed) {
      deferred.Resolve(env.Undefined());
      return deferred.Promise();
    }
    Device* device = device_;
    device->closed = true;
    device_ = nullptr;
    if (!device->reading) {
      device->CloseFds();
      delete device;
      deferred.Resolve(env.Undefined());
      return deferred.Promise();
    }
    device->closeDeferred = std::make_unique<Napi::Promise::Deferred>(deferred);
    device->stopping = true;
    uint64_t one = 1;
    if (::write(device->wakefd, &one, sizeof(one)) < 0) { /* reader sees stopping on its next wake */ }
    device->tsfn.Ref(env);  // the close promise must be able to settle
    return deferred.Promise();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (device_ && device_->reading) device_->tsfn.Ref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (device_ && device_->reading) device_->tsfn.Unref(info.Env());
    return info.Env().Undefined();
  }
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("TunDevice", TunDevice::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(klab_tun, Init)

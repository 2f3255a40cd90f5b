#include "common/worker_pool.h"

#include <pthread.h>

namespace shoal {

WorkerPool::WorkerPool(size_t threads, std::string name)
    : WorkerPool(threads, threads, std::move(name), std::chrono::steady_clock::duration::max()) {}

WorkerPool::WorkerPool(size_t kept, size_t most, std::string name, std::chrono::steady_clock::duration idle)
    : name_(std::move(name)), idle_end_(idle) {
  name_.resize(std::min<size_t>(name_.size(), 15));
  std::lock_guard<std::mutex> lock(mu_);
  most_ = std::max<size_t>(most, 1);
  kept_ = std::min(std::max<size_t>(kept, 1), most_);
  while (threads_.size() < kept_) Spawn();
}

std::unique_ptr<WorkerPool> WorkerPool::Elastic(size_t kept, size_t most, std::string name,
                                                std::chrono::steady_clock::duration idle) {
  return std::unique_ptr<WorkerPool>(new WorkerPool(kept, most, std::move(name), idle));
}

void WorkerPool::Spawn() {
  std::thread t([this] { Run(); });
  pthread_setname_np(t.native_handle(), name_.c_str());
  const std::thread::id id = t.get_id();
  threads_.emplace(id, std::move(t));
  idle_++;  // free for a task from now, before it runs
}

void WorkerPool::Grow(size_t threads) {
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    most_ = std::max(most_, threads);
    kept_ = std::max(kept_, threads);
    while (threads_.size() < kept_) Spawn();
    ended.swap(ended_);
  }
  for (auto& t : ended) t.join();
}

size_t WorkerPool::threads() {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

size_t WorkerPool::most() {
  std::lock_guard<std::mutex> lock(mu_);
  return most_;
}

WorkerPool::~WorkerPool() {
  std::map<std::thread::id, std::thread> running;
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // No thread starts once stopping_ is set (Push from a task spawns none then), and none
  // ends early: every one runs until the queue is empty.
  {
    std::lock_guard<std::mutex> lock(mu_);
    running.swap(threads_);
  }
  for (auto& [id, t] : running) t.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended.swap(ended_);
  }
  for (auto& t : ended) t.join();
}

void WorkerPool::Push(std::function<void()> task) {
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    // Every idle thread is spoken for: one more, within the bound.
    if (!stopping_ && tasks_.size() > idle_ && threads_.size() < most_) Spawn();
    ended.swap(ended_);
  }
  cv_.notify_one();
  for (auto& t : ended) t.join();
}

void WorkerPool::SubmitAfter(std::chrono::steady_clock::duration delay, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      tasks_.push_back(std::move(task));
    } else {
      delayed_.emplace(std::chrono::steady_clock::now() + delay, std::move(task));
    }
  }
  // Every thread: the one that waits for the earliest due time may be another.
  cv_.notify_all();
}

size_t WorkerPool::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void WorkerPool::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    while (!delayed_.empty() && (stopping_ || delayed_.begin()->first <= now)) {
      tasks_.push_back(std::move(delayed_.begin()->second));
      delayed_.erase(delayed_.begin());
    }
    if (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      idle_--;
      lock.unlock();
      task();
      task = nullptr;  // what it holds goes before the lock is taken again
      lock.lock();
      idle_++;
      continue;
    }
    if (stopping_) {  // nothing left to run
      idle_--;
      return;
    }
    if (delayed_.empty() && threads_.size() > kept_) {
      // Beyond the threads kept at rest: ends after idle_end_ without a task.
      if (!cv_.wait_for(lock, idle_end_, [&] { return !tasks_.empty() || stopping_ || !delayed_.empty(); }) &&
          threads_.size() > kept_) {
        idle_--;
        auto self = threads_.find(std::this_thread::get_id());
        ended_.push_back(std::move(self->second));
        threads_.erase(self);
        return;
      }
    } else if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      // A copy: while this thread waits, another may run that task and take it out of the
      // queue, and wait_until reads the time again when it wakes.
      const auto due = delayed_.begin()->first;
      cv_.wait_until(lock, due);
    }
  }
}

}  // namespace shoal

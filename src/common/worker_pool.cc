#include "common/worker_pool.h"

#include <pthread.h>

namespace shoal {

WorkerPool::WorkerPool(size_t threads, std::string name) : name_(std::move(name)) {
  name_.resize(std::min<size_t>(name_.size(), 15));
  Grow(std::max<size_t>(threads, 1));
}

void WorkerPool::Grow(size_t threads) {
  std::lock_guard<std::mutex> lock(mu_);
  while (threads_.size() < threads) {
    threads_.emplace_back([this] { Run(); });
    pthread_setname_np(threads_.back().native_handle(), name_.c_str());
  }
}

size_t WorkerPool::threads() {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Push(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
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
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        const auto now = std::chrono::steady_clock::now();
        while (!delayed_.empty() && (stopping_ || delayed_.begin()->first <= now)) {
          tasks_.push_back(std::move(delayed_.begin()->second));
          delayed_.erase(delayed_.begin());
        }
        if (!tasks_.empty()) break;
        if (stopping_) return;  // nothing left to run
        if (delayed_.empty()) {
          cv_.wait(lock);
        } else {
          // A copy: while this thread waits, another may run that task and take it out of
          // the queue, and wait_until reads the time again when it wakes.
          const auto due = delayed_.begin()->first;
          cv_.wait_until(lock, due);
        }
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace shoal

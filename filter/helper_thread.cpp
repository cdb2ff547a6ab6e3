#include "filter/helper_thread.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace scrub {

struct HelperThread::Pool {
  boost::asio::thread_pool pool{1};
};

HelperThread::HelperThread() : pool_(std::make_unique<Pool>()) {}

HelperThread::~HelperThread() { pool_->pool.join(); }  // no job is queued: each was waited for

HelperThread::Job HelperThread::run(std::function<void()> task) {
  std::packaged_task<void()> t(std::move(task));
  Job job(t.get_future());
  boost::asio::post(pool_->pool, std::move(t));
  return job;
}

}  // namespace scrub

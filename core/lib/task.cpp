#include "moat/task.hpp"

#include <algorithm>

namespace moat {
namespace detail {

Scope::Scope(Fiber& f, Scope* p, bool s) : fiber(&f), parent(p), shield(s) {
    if (parent) parent->children.push_back(this);
}

Scope::~Scope() {
    if (parent) std::erase(parent->children, this);
    // Children outlive their parent only if a child fiber is still being torn
    // down; detach them so they do not point at freed memory.
    for (auto* c : children) c->parent = nullptr;
}

void Scope::cancel() {
    if (cancelled) return;
    cancelled = true;
    if (fiber->current == this && fiber->waiter) fiber->waiter->cancel();
    // Copy: a cancel callback must not invalidate our iteration.
    auto list = children;
    for (auto* c : list)
        if (!c->shield) c->cancel();
}

bool Scope::effectively_cancelled() const {
    for (auto* s = this; s; s = s->shield ? nullptr : s->parent)
        if (s->cancelled) return true;
    return false;
}

} // namespace detail

void TaskRef::cancel() {
    if (child_) child_->root.cancel();
}

bool TaskRef::done() const { return !child_ || child_->finished.is_set(); }

Event::Wait TaskRef::join() { return child_->finished.wait(); }

TaskGroup::~TaskGroup() { assert(children_.empty()); }

TaskRef TaskGroup::spawn(Task<void> task, std::string name) {
    if (name.empty()) name = fiber_.name;
    auto child = std::make_shared<TaskRef::Child>(*this, *fiber_.loop, std::move(name), &guard_.scope());
    child->fiber.owner = fiber_.owner;
    child->task = std::move(task);
    auto h = child->task.handle();
    h.promise().fiber = &child->fiber;
    h.promise().on_done = [](void* arg) {
        auto* c = static_cast<TaskRef::Child*>(arg);
        c->group->child_done(c);
    };
    h.promise().on_done_arg = child.get();
    children_.push_back(child);
    fiber_.loop->post_resume(&child->fiber, h);
    return TaskRef(child);
}

void TaskGroup::fail(std::exception_ptr e) {
    if (!error_) error_ = std::move(e);
    cancel();
}

void TaskGroup::child_done(TaskRef::Child* c) {
    if (auto e = c->task.handle().promise().error) {
        try {
            std::rethrow_exception(e);
        } catch (const Cancelled&) {
            // A cancelled child is not a failure of the group.
        } catch (...) {
            fail(e);
        }
    }
    c->finished.set();
    // The frame is still inside its final suspend: free it on the next turn.
    fiber_.loop->post([this, c] {
        auto it = std::find_if(children_.begin(), children_.end(), [c](auto& p) { return p.get() == c; });
        if (it != children_.end()) {
            (*it)->task = Task<void>();
            // A TaskRef may keep the child alive after the group is gone.
            std::erase(guard_.scope().children, &(*it)->root);
            (*it)->root.parent = nullptr;
            children_.erase(it);
        }
        if (children_.empty()) idle_.set();
    });
}

Task<void> TaskGroup::join() {
    while (!children_.empty()) {
        idle_.clear();
        co_await idle_.wait_uncancellable();
    }
    if (error_) std::rethrow_exception(error_);
    auto* outer = guard_.scope().parent;
    if (outer && outer->effectively_cancelled()) throw Cancelled();
}

} // namespace moat

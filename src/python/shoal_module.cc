// The Python binding's native part, `shoal._shoal` (python/shoal/__init__.py wraps it into file
// objects). Every call that does I/O releases the GIL.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "client/checkpoint.h"
#include "client/client.h"

namespace py = pybind11;
using shoal::Code;
using shoal::Result;
using shoal::Status;
using shoal::client::Client;
using shoal::client::ClientOptions;
using shoal::client::Reader;
using shoal::client::Writer;

namespace {

// Raises the Python exception for `st` (GIL held): FileNotFoundError, PermissionError,
// ValueError, or OSError with the matching errno.
[[noreturn]] void Raise(const Status& st) {
  PyObject* type = PyExc_OSError;
  switch (st.code()) {
    case Code::kNotFound: type = PyExc_FileNotFoundError; break;
    case Code::kPermissionDenied: type = PyExc_PermissionError; break;
    case Code::kInvalidArgument: type = PyExc_ValueError; break;
    case Code::kAlreadyExists: type = PyExc_FileExistsError; break;
    default: break;
  }
  PyErr_SetString(type, st.ToString().c_str());
  throw py::error_already_set();
}
void Check(const Status& st) {
  if (!st.ok()) Raise(st);
}
template <typename T>
T Check(Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(r).value();
}

struct Entry {
  std::string url;
  uint64_t size = 0;
  std::string etag;
  bool is_dir = false;
  int64_t last_modified = 0;
};

class PyReader {
 public:
  explicit PyReader(std::unique_ptr<Reader> r) : r_(std::move(r)) {}
  uint64_t size() const { return r_->info().size; }
  std::string etag() const { return r_->info().etag; }
  // Up to n bytes from `offset` (n < 0: to the end), as bytes.
  py::bytes ReadAt(uint64_t offset, int64_t n) {
    uint64_t left = offset < size() ? size() - offset : 0;
    size_t want = static_cast<size_t>(n < 0 ? left : std::min<uint64_t>(left, static_cast<uint64_t>(n)));
    PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(want));
    if (out == nullptr) throw py::error_already_set();
    py::bytes result = py::reinterpret_steal<py::bytes>(out);
    Result<size_t> got = size_t{0};
    {
      char* dst = PyBytes_AS_STRING(out);  // not yet visible to any other thread
      py::gil_scoped_release nogil;
      got = r_->ReadAt(offset, dst, want);
    }
    size_t done = Check(std::move(got));
    if (done != want) return py::bytes(PyBytes_AS_STRING(out), done);
    return result;
  }
  // Into a writable buffer (readinto); the bytes read.
  size_t ReadInto(uint64_t offset, py::buffer b) {
    py::buffer_info info = b.request(true);
    size_t n = static_cast<size_t>(info.size * info.itemsize);
    Result<size_t> got = size_t{0};
    {
      py::gil_scoped_release nogil;
      got = r_->ReadAt(offset, static_cast<char*>(info.ptr), n);
    }
    return Check(std::move(got));
  }

 private:
  std::unique_ptr<Reader> r_;
};

class PyWriter {
 public:
  explicit PyWriter(std::unique_ptr<Writer> w) : w_(std::move(w)) {}
  size_t Write(py::buffer b) {
    py::buffer_info info = b.request();
    size_t n = static_cast<size_t>(info.size * info.itemsize);
    Status st;
    {
      py::gil_scoped_release nogil;
      st = w_->Write(static_cast<const char*>(info.ptr), n);
    }
    Check(st);
    return n;
  }
  // At `offset` (anywhere: the writer keeps a spool file).
  size_t WriteAt(uint64_t offset, py::buffer b) {
    py::buffer_info info = b.request();
    size_t n = static_cast<size_t>(info.size * info.itemsize);
    Status st;
    {
      py::gil_scoped_release nogil;
      st = w_->WriteAt(offset, static_cast<const char*>(info.ptr), n);
    }
    Check(st);
    return n;
  }
  void Truncate(uint64_t size) {
    Status st;
    {
      py::gil_scoped_release nogil;
      st = w_->Truncate(size);
    }
    Check(st);
  }
  uint64_t size() const { return w_->size(); }
  // Completes the object: after this returns it is on the node (or in the store).
  py::dict Close() {
    Result<shoal::ObjectInfo> r = Status::Ok();
    {
      py::gil_scoped_release nogil;
      r = w_->Close();
    }
    auto info = Check(std::move(r));
    py::dict d;
    d["size"] = info.size;
    d["etag"] = info.etag;
    return d;
  }
  void Abort() {
    py::gil_scoped_release nogil;
    w_->Abort();
  }

 private:
  std::unique_ptr<Writer> w_;
};

class PyClient {
 public:
  PyClient(const std::string& cache, const std::string& token_file) {
    ClientOptions o;
    o.cache = cache;
    o.token_file = token_file;
    c_ = Check(Client::Open(o));
  }
  std::string cache() const { return c_->cache().endpoint; }

  PyReader OpenRead(const std::string& url) {
    Result<std::unique_ptr<Reader>> r = Status::Ok();
    {
      py::gil_scoped_release nogil;
      r = c_->OpenRead(url);
    }
    return PyReader(Check(std::move(r)));
  }
  PyWriter OpenWrite(const std::string& url, bool append) {
    Result<std::unique_ptr<Writer>> w = Status::Ok();
    {
      py::gil_scoped_release nogil;
      w = append ? c_->OpenAppend(url) : c_->OpenWrite(url);
    }
    return PyWriter(Check(std::move(w)));
  }
  py::dict Stat(const std::string& url) {
    Result<shoal::client::FileInfo> f = Status::Ok();
    {
      py::gil_scoped_release nogil;
      f = c_->Stat(url);
    }
    auto info = Check(std::move(f));
    py::dict d;
    d["url"] = url;
    d["size"] = info.info.size;
    d["etag"] = info.info.etag;
    d["state"] = info.state.empty() ? std::string("durable") : info.state;
    d["last_modified"] = static_cast<int64_t>(info.info.last_modified);
    return d;
  }
  std::vector<Entry> Ls(const std::string& prefix, bool recursive) {
    Result<std::vector<shoal::ObjectInfo>> objects = Status::Ok();
    std::vector<std::string> prefixes;
    {
      py::gil_scoped_release nogil;
      objects = c_->ListAll(prefix, recursive, &prefixes);
    }
    auto list = Check(std::move(objects));
    auto bucket = Check(shoal::ObjectUrl::Parse(prefix));
    std::vector<Entry> out;
    for (const auto& p : prefixes) out.push_back(Entry{bucket.WithKey(p).ToString(), 0, "", true, 0});
    for (const auto& o : list) {
      out.push_back(Entry{bucket.WithKey(o.key).ToString(), o.size, o.etag, false,
                          static_cast<int64_t>(o.last_modified)});
    }
    return out;
  }
  void Delete(const std::string& url) {
    Status st;
    {
      py::gil_scoped_release nogil;
      st = c_->Delete(url);
    }
    Check(st);
  }
  void Flush(const std::string& prefix, int timeout_s) {
    Status st;
    {
      py::gil_scoped_release nogil;
      st = c_->Flush(prefix, timeout_s);
    }
    Check(st);
  }
  // The marker's JSON (see client/checkpoint.h CommitCheckpoint).
  std::string Commit(const std::string& prefix, uint32_t expect, const std::string& shard_name, int timeout_s,
                     bool durable) {
    Result<std::string> r = Status::Ok();
    {
      py::gil_scoped_release nogil;
      r = shoal::client::CommitCheckpoint(*c_, prefix, shoal::client::ShardSpec{expect, shard_name}, timeout_s,
                                          nullptr, durable);
    }
    return Check(std::move(r));
  }
  // The newest complete step's URL, or None.
  std::optional<std::string> Latest(const std::string& prefix) {
    Result<shoal::client::LatestCheckpoint> r = Status::Ok();
    {
      py::gil_scoped_release nogil;
      r = shoal::client::FindLatestCheckpoint(*c_, prefix);
    }
    auto latest = Check(std::move(r));
    if (!latest.found) return std::nullopt;
    return latest.url;
  }

 private:
  std::unique_ptr<Client> c_;
};

}  // namespace

PYBIND11_MODULE(_shoal, m) {
  m.doc() = "Shoal's native client (use the `shoal` package: shoal.Client)";
  py::class_<Entry>(m, "Entry")
      .def_readonly("url", &Entry::url)
      .def_readonly("size", &Entry::size)
      .def_readonly("etag", &Entry::etag)
      .def_readonly("is_dir", &Entry::is_dir)
      .def_readonly("last_modified", &Entry::last_modified)
      .def("__repr__", [](const Entry& e) {
        return "Entry(url='" + e.url + "', size=" + std::to_string(e.size) + (e.is_dir ? ", is_dir=True)" : ")");
      });
  py::class_<PyReader>(m, "Reader")
      .def_property_readonly("size", &PyReader::size)
      .def_property_readonly("etag", &PyReader::etag)
      .def("read_at", &PyReader::ReadAt, py::arg("offset"), py::arg("n"))
      .def("readinto_at", &PyReader::ReadInto, py::arg("offset"), py::arg("buffer"));
  py::class_<PyWriter>(m, "Writer")
      .def_property_readonly("size", &PyWriter::size)
      .def("write", &PyWriter::Write, py::arg("data"))
      .def("write_at", &PyWriter::WriteAt, py::arg("offset"), py::arg("data"))
      .def("truncate", &PyWriter::Truncate, py::arg("size"))
      .def("close", &PyWriter::Close)
      .def("abort", &PyWriter::Abort);
  py::class_<PyClient>(m, "Client")
      .def(py::init<const std::string&, const std::string&>(), py::arg("cache") = "", py::arg("token_file") = "")
      .def_property_readonly("cache", &PyClient::cache)
      .def("open_read", &PyClient::OpenRead, py::arg("url"))
      .def("open_write", &PyClient::OpenWrite, py::arg("url"), py::arg("append") = false)
      .def("stat", &PyClient::Stat, py::arg("url"))
      .def("ls", &PyClient::Ls, py::arg("prefix"), py::arg("recursive") = false)
      .def("delete", &PyClient::Delete, py::arg("url"))
      .def("flush", &PyClient::Flush, py::arg("prefix") = "", py::arg("timeout") = 0)
      .def("commit", &PyClient::Commit, py::arg("prefix"), py::arg("expect") = 0,
           py::arg("shard_name") = shoal::client::ShardSpec().name, py::arg("timeout") = 0,
           py::arg("durable") = false)
      .def("latest_checkpoint", &PyClient::Latest, py::arg("prefix"));
}

package main

import (
	"context"
	"sync"

	driverpb "grpcchaos/driver/v1"

	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/channelz/service" // its init turns channelz on, before any channel
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const maxChannelzPages = 10000

// channelz answers Subchannels from grpc-go's channelz, the one place it counts attempts per
// backend. grpc-go 1.33 keeps the data behind internal packages and the channelz service,
// so the driver serves that service beside its own and asks it over loopback.
type channelz struct {
	client channelzpb.ChannelzClient
	// One channel made at a time: the top channel that appears is then the one made.
	dialing sync.Mutex
}

// newChannelz registers the channelz service on server (before it serves) and dials it at
// addr; the dial itself does not wait for the server.
func newChannelz(server *grpc.Server, addr string) (*channelz, error) {
	service.RegisterChannelzServiceToServer(server)
	cc, err := grpc.Dial(addr, grpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	return &channelz{client: channelzpb.NewChannelzClient(cc)}, nil
}

func (z *channelz) topChannels(ctx context.Context) (map[int64]bool, error) {
	ids := map[int64]bool{}
	var start int64
	for page := 0; page < maxChannelzPages; page++ {
		reply, err := z.client.GetTopChannels(ctx, &channelzpb.GetTopChannelsRequest{StartChannelId: start})
		if err != nil {
			return nil, err
		}
		for _, c := range reply.Channel {
			ids[c.Ref.ChannelId] = true
			if c.Ref.ChannelId >= start {
				start = c.Ref.ChannelId + 1
			}
		}
		if reply.End || len(reply.Channel) == 0 {
			break
		}
	}
	return ids, nil
}

// dial makes a channel and finds its channelz id (0 when that fails: the channel works,
// only Subchannels cannot answer for it).
func (z *channelz) dial(ctx context.Context, target string, opts []grpc.DialOption) (*grpc.ClientConn, int64, error) {
	z.dialing.Lock()
	defer z.dialing.Unlock()
	before, err := z.topChannels(ctx)
	cc, dialErr := grpc.Dial(target, opts...)
	if dialErr != nil || err != nil {
		return cc, 0, dialErr
	}
	after, err := z.topChannels(ctx)
	if err != nil {
		return cc, 0, nil
	}
	var id int64
	for candidate := range after {
		if !before[candidate] {
			if id != 0 {
				return cc, 0, nil // another appeared too: which is which is unknown
			}
			id = candidate
		}
	}
	return cc, id, nil
}

// subchannels reads a channel's per-address counters; an address with more than one
// subchannel (a re-resolution made a new one) gets their sums, as the runner keys by address.
func (z *channelz) subchannels(ctx context.Context, id int64) (*driverpb.SubchannelList, error) {
	list := &driverpb.SubchannelList{NowNs: nowNs()}
	channel, err := z.client.GetChannel(ctx, &channelzpb.GetChannelRequest{ChannelId: id})
	if err != nil {
		return nil, err
	}
	byAddress := map[string]*driverpb.Subchannel{}
	for _, ref := range channel.Channel.SubchannelRef {
		reply, err := z.client.GetSubchannel(ctx, &channelzpb.GetSubchannelRequest{SubchannelId: ref.SubchannelId})
		if status.Code(err) == codes.NotFound {
			continue // shut down since the channel was read
		} else if err != nil {
			return nil, err
		}
		data := reply.Subchannel.Data
		s := byAddress[data.Target]
		if s == nil {
			s = &driverpb.Subchannel{Address: data.Target, State: data.State.GetState().String()}
			byAddress[data.Target] = s
			list.Subchannels = append(list.Subchannels, s)
		}
		s.CallsStarted += uint64(data.CallsStarted)
		s.CallsSucceeded += uint64(data.CallsSucceeded)
		s.CallsFailed += uint64(data.CallsFailed)
		for _, socket := range reply.Subchannel.SocketRef {
			s.Sockets = append(s.Sockets, socket.SocketId)
		}
	}
	return list, nil
}
